// OuroModel
