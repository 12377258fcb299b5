// OuroValidation
