import ArgumentParser
import Foundation

@main
struct PubSubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubsub",
        abstract: "A real-time publish/subscribe server: WebSocket and REST, in memory.",
        subcommands: [Serve.self, Bench.self, Token.self, Topics.self, Stats.self, Pub.self, Sub.self],
        defaultSubcommand: Serve.self
    )

    /// The commands that talk to a server, whose usage errors exit with 2 (SPEC 8) so that a
    /// script tells them from a refusal (1) and an unreachable server (3). The others keep
    /// argument-parser's EX_USAGE (64), which scripts and tests of `serve` already expect.
    static let clientCommands: Set<String> = [Topics._commandName, Stats._commandName, Pub._commandName, Sub._commandName]

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure, let first = CommandLine.arguments.dropFirst().first,
                clientCommands.contains(first)
            {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
