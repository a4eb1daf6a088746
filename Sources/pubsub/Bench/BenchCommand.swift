import ArgumentParser
import Foundation
import NIOCore

/// `pubsub bench`: load runs against any pubsub server, in the spirit of `nats bench`.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a running pubsub server: fan-out, latency, pipe and idle-connection runs.",
        discussion: """
            Pass --pid with the server's process id (same machine) to get its CPU time per delivery \
            and its resident memory. Pin server and bench to different CPUs for stable figures, e.g. \
            `taskset -c 0 pubsub serve` and `taskset -c 1 pubsub bench fanout --pid …`.
            """,
        subcommands: [FanOut.self, Latency.self, Pipe.self, Idle.self, Flood.self]
    )
}

struct TargetOptions: ParsableArguments {
    @Option(help: "Server base URL.") var url = "http://127.0.0.1:4000"
    @Option(help: "Nodes of a cluster, comma-separated: subscribers are spread over them in turn, the publisher uses the first (instead of --url).")
    var urls: String?
    @Option(help: "Topic to use (created if missing).") var topic = "bench"
    @Option(help: "A token or API key for a server started with --auth token: sent as the token query parameter and as a bearer.")
    var token: String?
    @Flag(help: "Connect to /ws?batch=1: messages may share frames, one per line, and are counted per line.")
    var batch = false
    @Option(help: "Server process id, for CPU and memory figures.") var pid: Int32?
    @Option(help: "Process ids of a cluster's nodes, comma-separated: CPU and memory are summed over them (instead of --pid).")
    var pids: String?
    @Option(help: "Give up after this many seconds without progress.") var stall: Double = 10
    @Option(help: "Give up after this many seconds in all.") var deadline: Double = 300

    func target() throws -> BenchRun.Target {
        let list = urls.map { $0.split(separator: ",").map(String.init) } ?? [url]
        let endpoints = try list.map { text -> BenchRun.Endpoint in
            guard let components = URLComponents(string: text), let host = components.host else {
                throw ValidationError("a server URL must look like http://127.0.0.1:4000, not '\(text)'")
            }
            return .init(host: host, port: components.port ?? 4000)
        }
        guard !endpoints.isEmpty else { throw ValidationError("--urls names no server") }
        let processes = try pids.map { text in
            try text.split(separator: ",").map { part -> Int32 in
                guard let pid = Int32(part) else { throw ValidationError("--pids takes process ids, not '\(part)'") }
                return pid
            }
        } ?? pid.map { [$0] } ?? []
        return .init(endpoints: endpoints, topic: topic, pids: processes, token: token, batch: batch)
    }

    /// The one process whose memory a run samples.
    var singlePID: Int32? { pid ?? pids.flatMap { $0.split(separator: ",").first.flatMap { Int32($0) } } }
}

/// One publisher and N subscribers; the publisher keeps at most `window` publishes un-acked
/// and never runs more than `e2eWindow` messages ahead of the slowest subscriber, so the run
/// measures throughput, not drops. With a `rate` (messages per second) it is paced as well.
func runFlow(
    _ run: BenchRun, subs: Int, msgs: Int, payload: Int, window: Int, e2eWindow: Int, ack: Bool,
    options: TargetOptions, name: String, topics: Int = 1, rate: Double = 0
) async throws -> [String: Any] {
    let progress = Progress()
    let topics = max(1, topics)
    guard topics == 1 || (msgs % topics == 0 && subs % topics == 0) else {
        throw ValidationError("with --topics, --msgs and --subs must be multiples of it")
    }
    try await run.createTopics(topics)
    try await run.connectSubscribers(subs, topics: topics, progress: progress)
    let publisher = try await BenchConnection.connect(group: run.group, host: run.target.host, port: run.target.port, path: run.target.webSocketPath, batched: run.target.batch)
    // Message k goes to topic k % topics; each subscriber gets msgs / topics of them.
    let frames = (0..<topics).map { run.publishFrame(t0: monotonicNanos(), payload: payload, ack: ack, topic: run.topicName($0, of: topics)) }
    let expected = subs * msgs / topics
    let finished = run.loop.makePromise(of: Void.self)
    let cpuBefore = run.stats?.cpuSeconds()
    let started = monotonicNanos()

    try await run.loop.submit {
        publisher.onText = { text in
            if text.hasPrefix("{\"type\":\"ack\"") { run.acks += 1 } else if text.hasPrefix("{\"type\":\"error\"") { run.errors += 1 }
        }
    }.get()
    // The pump runs on the loop every 200 µs and on each batch: bounded by both windows.
    let pump = run.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .microseconds(200)) { task in
        if run.totalReceived >= expected { finished.succeed(()); task.cancel(); return }
        var batch = ByteBuffer()
        var slowest = run.minReceived
        let due = rate > 0 ? Int(rate * Double(monotonicNanos() - started) / 1e9) : Int.max
        while run.sent < msgs && run.sent < due && batch.readableBytes < 64 * 1024 {
            if ack && run.sent - run.acks >= window { break }
            if e2eWindow > 0 && run.sent / topics - slowest >= e2eWindow {
                slowest = run.minReceived
                if run.sent / topics - slowest >= e2eWindow { break }
            }
            batch.writeImmutableBuffer(frames[run.sent % topics])
            run.sent += 1
        }
        if batch.readableBytes > 0 { publisher.write(batch) }
        progress.update("\(name): sent \(run.sent)/\(msgs)  delivered \(run.totalReceived)/\(expected)")
    }
    var lastTotal = -1
    var lastChange = monotonicNanos()
    var end = "complete"
    while true {
        try await Task.sleep(for: .milliseconds(50))
        let total = try await run.loop.submit { run.totalReceived }.get()
        if total >= expected { break }
        let now = monotonicNanos()
        if total != lastTotal { lastTotal = total; lastChange = now }
        if Double(now - lastChange) / 1e9 > options.stall { end = "stalled \(Int(options.stall)) s"; break }
        if Double(now - started) / 1e9 > options.deadline { end = "deadline"; break }
    }
    let elapsed = Double(monotonicNanos() - started) / 1e9
    let cpuAfter = run.stats?.cpuSeconds()
    pump.cancel()
    finished.succeed(())
    progress.done()
    let (received, acks, errors, sent) = try await run.loop.submit { (run.totalReceived, run.acks, run.errors, run.sent) }.get()
    var result: [String: Any] = [
        "mode": name, "subs": subs, "topics": topics, "msgs": msgs, "payload": payload, "expected": expected, "received": received,
        "lost": expected - received, "end": end, "seconds": (elapsed * 1000).rounded() / 1000,
        "deliveries_per_s": Int(Double(received) / elapsed), "publishes_per_s": Int(Double(sent) / elapsed),
        "acks": acks, "errors": errors, "batch": options.batch,
    ]
    if let cpuBefore, let cpuAfter, received > 0 {
        result["server_cpu_s"] = cpuAfter - cpuBefore
        result["server_us_per_delivery"] = ((cpuAfter - cpuBefore) / Double(received) * 1e6 * 1000).rounded() / 1000
    }
    return result
}

struct FanOut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fanout", abstract: "One topic, N subscribers, one publisher as fast as the windows allow.")
    @OptionGroup var options: TargetOptions
    @Option(help: "Subscriber connections.") var subs = 1000
    @Option(help: "Messages to publish.") var msgs = 20000
    @Option(help: "Bytes of each message's JSON.") var payload = 100
    @Option(help: "Most un-acked publishes.") var window = 1000
    @Option(help: "Most messages the publisher may be ahead of the slowest subscriber (0: no limit).") var e2eWindow = 2000
    @Flag(help: "Publish with \"ack\": false.") var noAck = false
    @Option(help: "Spread subscribers and messages over this many topics (<topic>-0 …); 1 uses --topic itself.") var topics = 1
    @Flag(help: "Subscribers negotiate permessage-deflate.") var deflate = false
    @Option(help: "Publish at most this many messages per second (0: as fast as the windows allow).") var rate: Double = 0
    @Option(help: "Wildcard patterns on other subjects (other-<i>.*) held during the run, on connections of their own.") var patterns = 0

    func validate() throws {
        guard rate >= 0 else { throw ValidationError("--rate must be 0 or more") }
        guard patterns >= 0 else { throw ValidationError("--patterns must be 0 or more") }
    }

    func run() async throws {
        let run = BenchRun(target: try options.target())
        run.deflate = deflate
        defer { Task { await run.shutdown() } }
        try await run.holdPatterns(patterns)
        var result = try await runFlow(
            run, subs: subs, msgs: msgs, payload: payload, window: window, e2eWindow: e2eWindow, ack: !noAck, options: options,
            name: "fanout", topics: topics, rate: rate
        )
        result["deflate"] = deflate
        result["rate"] = rate
        result["patterns"] = patterns
        report("fan-out: \(subs) subscribers over \(topics) topic(s) × \(msgs) messages of \(payload) B\(deflate ? ", permessage-deflate" : "")", rows(result), json: result)
    }
}

struct Pipe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One publisher to one subscriber.")
    @OptionGroup var options: TargetOptions
    @Option(help: "Messages to publish.") var msgs = 200_000
    @Option(help: "Bytes of each message's JSON.") var payload = 100
    @Option(help: "Most un-acked publishes.") var window = 10000
    @Option(help: "Most messages the publisher may be ahead of the subscriber (0: no limit).") var e2eWindow = 20000
    @Flag(help: "Publish with \"ack\": false.") var noAck = false

    func run() async throws {
        let run = BenchRun(target: try options.target())
        defer { Task { await run.shutdown() } }
        let result = try await runFlow(run, subs: 1, msgs: msgs, payload: payload, window: window, e2eWindow: e2eWindow, ack: !noAck, options: options, name: "pipe")
        report("pipe: \(msgs) messages of \(payload) B\(noAck ? ", no acks" : "")", rows(result), json: result)
    }
}

func rows(_ r: [String: Any]) -> [(String, String)] {
    var rows: [(String, String)] = [
        ("delivered", "\(r["received"]!) of \(r["expected"]!) (\(r["lost"]!) lost, \(r["end"]!))"),
        ("deliveries/s", "\(r["deliveries_per_s"]!)"),
        ("publishes/s", "\(r["publishes_per_s"]!)"),
        ("seconds", "\(r["seconds"]!)"),
    ]
    if let cpu = r["server_us_per_delivery"] { rows.append(("server CPU µs/delivery", "\(cpu)")) }
    return rows
}

struct Latency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delivery latency at a fixed publish rate (HdrHistogram percentiles).")
    @OptionGroup var options: TargetOptions
    @Option(help: "Subscriber connections.") var subs = 100
    @Option(help: "Publishes per second.") var rate = 200.0
    @Option(help: "Seconds to publish.") var duration = 10.0
    @Option(help: "Bytes of each message's JSON.") var payload = 100
    @Option(help: "Subscribers that time their events (0: all).") var probes = 0

    func run() async throws {
        let run = BenchRun(target: try options.target())
        defer { Task { await run.shutdown() } }
        let progress = Progress()
        try await run.createTopic()
        let measured = probes <= 0 || probes >= subs ? Set(0..<subs) : Set(stride(from: 0, to: subs, by: max(1, subs / probes)).prefix(probes))
        try await run.connectSubscribers(subs, record: measured, progress: progress)
        let publisher = try await BenchConnection.connect(group: run.group, host: run.target.host, port: run.target.port, path: run.target.webSocketPath, batched: run.target.batch)
        let total = Int(rate * duration)
        let cpuBefore = run.stats?.cpuSeconds()
        let interval = TimeAmount.nanoseconds(Int64(1e9 / rate))
        let started = monotonicNanos()
        let payload = self.payload
        let timer = run.loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
            guard run.sent < total else { task.cancel(); return }
            publisher.write(run.publishFrame(t0: monotonicNanos(), payload: payload, ack: false))
            run.sent += 1
            progress.update("latency: sent \(run.sent)/\(total)  delivered \(run.totalReceived)")
        }
        let expected = subs * total
        var end = "complete"
        var last = (-1, monotonicNanos())
        while true {
            try await Task.sleep(for: .milliseconds(50))
            let received = try await run.loop.submit { run.totalReceived }.get()
            if received >= expected { break }
            let now = monotonicNanos()
            if received != last.0 { last = (received, now) }
            if Double(now - last.1) / 1e9 > options.stall { end = "stalled"; break }
        }
        timer.cancel()
        let elapsed = Double(monotonicNanos() - started) / 1e9
        let cpuAfter = run.stats?.cpuSeconds()
        progress.done()
        let (received, histogram) = try await run.loop.submit { (run.totalReceived, run.latency) }.get()
        func ms(_ p: Double) -> Double { (Double(histogram.valueAtPercentile(p)) / 1e3).rounded() / 1e3 }
        var result: [String: Any] = [
            "mode": "latency", "subs": subs, "rate": rate, "duration": duration, "expected": expected, "received": received,
            "lost": expected - received, "end": end, "p50_ms": ms(50), "p90_ms": ms(90), "p99_ms": ms(99), "p999_ms": ms(99.9),
            "max_ms": (Double(histogram.maxRecorded) / 1e3).rounded() / 1e3, "samples": Int(histogram.totalCount),
        ]
        if let cpuBefore, let cpuAfter, received > 0 {
            result["server_us_per_delivery"] = ((cpuAfter - cpuBefore) / Double(received) * 1e9).rounded() / 1e3
        }
        _ = elapsed
        report(
            "latency: \(subs) subscribers, \(Int(rate)) msg/s for \(duration) s",
            [
                ("delivered", "\(received) of \(expected) (\(expected - received) lost, \(end))"),
                ("p50 / p90 / p99 / p99.9", "\(ms(50)) / \(ms(90)) / \(ms(99)) / \(ms(99.9)) ms"),
                ("max", "\(result["max_ms"]!) ms"),
            ] + (result["server_us_per_delivery"].map { [("server CPU µs/delivery", "\($0)")] } ?? []),
            json: result
        )
    }
}

struct Idle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "C idle subscribed connections: the server's memory per connection.")
    @OptionGroup var options: TargetOptions
    @Option(help: "Connections to open.") var conns = 10000
    @Option(name: .customLong("src-ips"), help: "Spread client source addresses over 127.0.0.1 … 127.0.0.N.") var srcIPs = 1
    @Option(help: "Seconds to wait after the last subscribe before reading memory.") var settle = 2.0

    func run() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard let pid = options.singlePID else { throw ValidationError("idle needs --pid to read the server's memory") }
        let run = BenchRun(target: try options.target())
        defer { Task { await run.shutdown() } }
        let before = ProcessStats(pids: [pid]).residentBytes() ?? 0
        try await run.createTopic()
        let addresses = (1...max(1, srcIPs)).map { "127.0.0.\($0)" }
        let progress = Progress()
        let started = monotonicNanos()
        try await run.connectSubscribers(conns, localAddresses: srcIPs > 1 ? addresses : [], progress: progress)
        let connectSeconds = Double(monotonicNanos() - started) / 1e9
        progress.done()
        try await Task.sleep(for: .seconds(settle))
        let after = ProcessStats(pids: [pid]).residentBytes() ?? 0
        let perConnection = (after - before) / max(1, conns)
        let result: [String: Any] = [
            "mode": "idle", "conns": conns, "rss_before_bytes": before, "rss_after_bytes": after,
            "bytes_per_conn": perConnection, "connect_s": (connectSeconds * 1000).rounded() / 1000,
            "projected_1m_conns_gib": (Double(perConnection) * 1e6 / 1_073_741_824 * 100).rounded() / 100,
        ]
        report(
            "idle: \(conns) subscribed connections",
            [
                ("server RSS before / after", "\(before / 1024) KiB / \(after / 1024) KiB"),
                ("per connection", "\(perConnection) B"),
                ("projected for 1,000,000", "\(result["projected_1m_conns_gib"]!) GiB"),
                ("connect time", "\(result["connect_s"]!) s"),
            ],
            json: result
        )
        for connection in run.subscribers { connection.close() }
    }
}

struct Flood: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Abuse: subscribers that never read while a publisher publishes at full speed; samples the server's memory."
    )
    @OptionGroup var options: TargetOptions
    @Option(help: "Subscribers that stop reading after their subscribe ack.") var stalled = 100
    @Option(help: "Seconds to publish.") var seconds = 60.0
    @Option(help: "Bytes of each message's JSON.") var payload = 1000

    func run() async throws {
        guard let pid = options.singlePID else { throw ValidationError("flood needs --pid to sample the server's memory") }
        let run = BenchRun(target: try options.target())
        defer { Task { await run.shutdown() } }
        let progress = Progress()
        try await run.createTopic()
        try await run.connectSubscribers(stalled, stalled: true, progress: progress)
        let publisher = try await BenchConnection.connect(group: run.group, host: run.target.host, port: run.target.port, path: run.target.webSocketPath, batched: run.target.batch)
        let frame = run.publishFrame(t0: 0, payload: payload, ack: false)
        let ping = BenchConnection.textFrame("{\"type\":\"ping\"}")
        try await run.loop.submit { publisher.onText = { if $0.hasPrefix("{\"type\":\"pong\"") { run.acks += 1 } } }.get()
        // Publish in batches of 100 followed by a ping; keep at most 20 batches un-answered, so the
        // publisher runs at the server's pace without piling up in its own socket.
        let pump = run.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .microseconds(200)) { _ in
            while run.sent / 100 - run.acks < 20 {  // acks counts pongs here
                var batch = ByteBuffer()
                for _ in 0..<100 { batch.writeImmutableBuffer(frame) }
                batch.writeImmutableBuffer(ping)
                publisher.write(batch)
                run.sent += 100
            }
        }
        let stats = ProcessStats(pids: [pid])
        var samples: [Int] = []
        let started = monotonicNanos()
        while Double(monotonicNanos() - started) / 1e9 < seconds {
            try await Task.sleep(for: .seconds(1))
            let rss = stats.residentBytes() ?? 0
            samples.append(rss)
            let sent = try await run.loop.submit { run.sent }.get()
            progress.update("flood: \(samples.count) s, published \(sent), server RSS \(rss / 1_048_576) MiB", force: true)
        }
        pump.cancel()
        progress.done()
        let sent = try await run.loop.submit { run.sent }.get()
        let peak = samples.max() ?? 0
        let lastTen = samples.suffix(10)
        let result: [String: Any] = [
            "mode": "flood", "stalled": stalled, "seconds": seconds, "payload": payload, "published": sent,
            "publishes_per_s": Int(Double(sent) / seconds), "rss_samples_mib": samples.map { $0 / 1_048_576 },
            "rss_peak_mib": peak / 1_048_576, "rss_last10_spread_mib": ((lastTen.max() ?? 0) - (lastTen.min() ?? 0)) / 1_048_576,
        ]
        report(
            "flood: \(stalled) stalled subscribers, \(Int(seconds)) s at full speed, \(payload) B messages",
            [
                ("published", "\(sent) (\(result["publishes_per_s"]!)/s)"),
                ("server RSS peak", "\(peak / 1_048_576) MiB"),
                ("RSS spread over the last 10 s", "\(result["rss_last10_spread_mib"]!) MiB"),
            ],
            json: result
        )
        for connection in run.subscribers { connection.close() }
    }
}
