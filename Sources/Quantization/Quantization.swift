// Quantization
