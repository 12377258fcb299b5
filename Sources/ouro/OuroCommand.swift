import ArgumentParser

@main
struct OuroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ouro",
        abstract: "Convert, quantize, run and validate Ouro looped language models.")
}
