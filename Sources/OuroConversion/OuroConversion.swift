// OuroConversion
