import Quantization

extension OuroWeights {
    /// The same weights with the tensor stored under `name` replaced (same shape, any type), e.g. to
    /// measure what quantizing only that tensor does to the looped model. Other tensors are shared.
    public func replacing(_ name: String, with tensor: WeightTensor) throws -> OuroWeights {
        try replacing([name: tensor])
    }

    /// The same weights with several tensors replaced at once.
    public func replacing(_ replacements: [String: WeightTensor]) throws -> OuroWeights {
        var tensors = tensorsByName
        for (name, tensor) in replacements {
            guard let old = tensors[name] else { throw ModelError.missingTensor(path: source, name: name) }
            guard old.shape == tensor.shape else {
                throw ModelError.shapeMismatch(path: source, name: name, expected: old.shape, actual: tensor.shape)
            }
            tensors[name] = tensor
        }
        return OuroWeights(config: config, source: source, tensors: tensors, storesSourceExactly: false,
                           quantizationRecipe: quantizationRecipe)
    }
}

extension WeightTensor {
    /// A tensor owning a copy of `bytes`: rows x type.rowByteCount(columns) bytes of `type` data.
    public init(type: GGMLType, shape: [Int], copying bytes: [UInt8]) throws {
        let columns = shape.last ?? 1
        let rows = shape.count >= 2 ? shape.dropLast().reduce(1, *) : 1
        guard let rowBytes = type.rowByteCount(columns), rows >= 0,
              let total = OuroConfiguration.checkedProduct([rowBytes, rows]), total == bytes.count else {
            throw ModelError.invalidRequest("\(bytes.count) bytes do not hold a \(type.name) tensor of shape \(shape)")
        }
        let owned = bytes.withUnsafeBytes { OwnedBytes(copying: $0) }
        self.init(type: type, shape: shape, bytes: owned.bytes, owner: owned)
    }

}
