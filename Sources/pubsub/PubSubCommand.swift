import ArgumentParser

@main
struct PubSubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubsub",
        abstract: "A real-time publish/subscribe server: WebSocket and REST, in memory.",
        subcommands: [Serve.self, Bench.self, Token.self],
        defaultSubcommand: Serve.self
    )
}
