import Foundation
import Testing

@testable import PubSubClient

/// The client's rules without a socket: what it sends, delivers and declares as the connection
/// comes and goes and the server answers.
@Suite("Client state machine")
struct ClientMachineTests {
    typealias Action = ClientMachine.Action

    static let now = ContinuousClock.now

    static func machine() -> ClientMachine {
        ClientMachine(backoff: Backoff(initial: .milliseconds(500), maximum: .seconds(15)), requestTimeout: .seconds(10))
    }

    /// The frames among `actions`, decoded.
    static func sent(_ actions: [Action]) -> [[String: Any]] {
        actions.compactMap { action in
            guard case .send(let text) = action else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        }
    }

    static func requestID(_ actions: [Action]) -> String {
        sent(actions).compactMap { $0["request_id"] as? String }.last ?? ""
    }

    static func subscribed(_ request: String, _ topic: String = "orders", seq: Int, epoch: String = "E1", replayed: Int = 0) -> ServerFrame {
        .subscribed(.init(requestID: request, topic: topic, seq: seq, epoch: epoch, replayed: replayed, pattern: false))
    }

    static func event(_ seq: Int, _ topic: String = "orders") -> ServerFrame {
        .event(topic: topic, seq: seq, id: "m\(seq)", payload: try! RawJSON("\(seq)"), timestamp: "t")
    }

    static func delivered(_ actions: [Action]) -> [SubscriptionElement] {
        actions.compactMap { action in
            guard case .deliver(_, let element) = action else { return nil }
            return element
        }
    }

    static func seqs(_ actions: [Action]) -> [Int] {
        delivered(actions).compactMap { element in
            guard case .event(let event) = element else { return nil }
            return event.seq
        }
    }

    static func gaps(_ actions: [Action]) -> [PubSubGap] {
        delivered(actions).compactMap { element in
            guard case .gap(let gap) = element else { return nil }
            return gap
        }
    }

    /// A machine with `orders` subscribed (from `start`) on an open connection, acked with `seq`.
    static func subscribedMachine(from start: SubscriptionStart = .latest, seq: Int = 0, replayed: Int = 0) -> (ClientMachine, Int, [Action]) {
        var machine = machine()
        let (id, actions) = machine.subscribe("orders", from: start, now: now)
        #expect(actions == [.connect])
        let opened = machine.received(.connected(clientID: "c-1"), now: now)
        #expect(opened.first == .opened)
        let acked = machine.received(subscribed(requestID(opened), seq: seq, replayed: replayed), now: now)
        #expect(acked.first == .subscribed(id))
        return (machine, id, acked)
    }

    /// Drops the connection and brings it back; returns the resubscribe frame's actions.
    static func reconnect(_ machine: inout ClientMachine) -> [Action] {
        let lost = machine.connectionLost(.disconnected, jitter: 0.5)
        #expect(lost.contains { if case .reconnect = $0 { true } else { false } })
        #expect(machine.connection == .waiting)
        #expect(machine.reconnectDue() == [.connect])
        return machine.received(.connected(clientID: "c-2"), now: now)
    }

    @Test func connectsOnFirstUseAndSubscribes() throws {
        var machine = Self.machine()
        let (_, actions) = machine.subscribe("orders", from: .lastN(5), now: Self.now)
        #expect(actions == [.connect])
        #expect(machine.connection == .connecting)
        let opened = machine.received(.connected(clientID: "c-1"), now: Self.now)
        let frame = try #require(Self.sent(opened).first)
        #expect(frame["type"] as? String == "subscribe")
        #expect(frame["topic"] as? String == "orders")
        #expect(frame["last_n"] as? Int == 5)
        #expect(frame["since"] == nil)
    }

    @Test func deliversInOrderOnceAndDeclaresJumps() {
        var (machine, id, acked) = Self.subscribedMachine(seq: 3)
        #expect(Self.gaps(acked).isEmpty)
        #expect(Self.seqs(machine.received(Self.event(4), now: Self.now)) == [4])
        // A repeated seq is not delivered twice.
        #expect(machine.received(Self.event(4), now: Self.now).isEmpty)
        #expect(machine.received(Self.event(2), now: Self.now).isEmpty)
        // 5 and 6 never came (dropped by the server's backpressure): a gap, then 7.
        let jumped = machine.received(Self.event(7), now: Self.now)
        #expect(jumped == [
            .deliver(id, .gap(PubSubGap(topic: "orders", epoch: "E1", missing: 5...6))),
            .deliver(id, .event(PubSubEvent(topic: "orders", seq: 7, epoch: "E1", id: "m7", payload: try! RawJSON("7"), timestamp: "t"))),
        ])
        #expect(machine.subscriptions[id]?.lastSeq == 7)
    }

    @Test func resubscribesFromTheLastDeliveredSeqAndEpoch() throws {
        var (machine, _, _) = Self.subscribedMachine(seq: 3)
        _ = machine.received(Self.event(4), now: Self.now)
        _ = machine.received(Self.event(5), now: Self.now)
        let reopened = Self.reconnect(&machine)
        let frame = try #require(Self.sent(reopened).first)
        #expect(frame["since"] as? Int == 5)
        #expect(frame["epoch"] as? String == "E1")
        #expect(frame["last_n"] == nil)
        // The server kept everything: seqs 6 and 7 are replayed, then live 8. No gap.
        let acked = machine.received(Self.subscribed(Self.requestID(reopened), seq: 7, replayed: 2), now: Self.now)
        #expect(acked.isEmpty)
        var seqs: [Int] = []
        for seq in [6, 7, 7, 8] { seqs += Self.seqs(machine.received(Self.event(seq), now: Self.now)) }
        #expect(seqs == [6, 7, 8])
    }

    @Test func aSubscriptionWithNoEventYetResumesFromItsAck() throws {
        var (machine, _, _) = Self.subscribedMachine(from: .lastN(10), seq: 12, replayed: 10)
        // Nothing of the replay arrived before the drop: resume after seq 2, the replay's start.
        let frame = try #require(Self.sent(Self.reconnect(&machine)).first)
        #expect(frame["since"] as? Int == 2)
        #expect(frame["last_n"] == nil)
    }

    @Test func historyTooShortIsAGapOfTheSameEpoch() {
        var (machine, id, _) = Self.subscribedMachine(seq: 3)
        let reopened = Self.reconnect(&machine)
        // 40 were published meanwhile; the history holds the last 10: 34…43. 4…33 are lost.
        let acked = machine.received(Self.subscribed(Self.requestID(reopened), seq: 43, replayed: 10), now: Self.now)
        #expect(acked == [.deliver(id, .gap(PubSubGap(topic: "orders", epoch: "E1", missing: 4...33)))])
        #expect(Self.seqs(machine.received(Self.event(34), now: Self.now)) == [34])
    }

    @Test func aNewEpochIsAGapFromTheOldOne() {
        var (machine, id, _) = Self.subscribedMachine(seq: 3)
        _ = machine.received(Self.event(4), now: Self.now)
        var reopened = Self.reconnect(&machine)
        // The server restarted: the topic starts again, two messages so far, both replayed.
        var acked = machine.received(Self.subscribed(Self.requestID(reopened), seq: 2, epoch: "E2", replayed: 2), now: Self.now)
        #expect(acked == [.deliver(id, .gap(PubSubGap(topic: "orders", epoch: "E2", missing: nil, previousEpoch: "E1", previousSeq: 4)))])
        #expect(Self.seqs(machine.received(Self.event(1), now: Self.now)) == [1])
        #expect(Self.seqs(machine.received(Self.event(2), now: Self.now)) == [2])
        #expect(machine.subscriptions[id]?.epoch == "E2")

        // Again, and this time the new epoch's history lost its first three.
        reopened = Self.reconnect(&machine)
        acked = machine.received(Self.subscribed(Self.requestID(reopened), seq: 5, epoch: "E3", replayed: 2), now: Self.now)
        #expect(acked == [.deliver(id, .gap(PubSubGap(topic: "orders", epoch: "E3", missing: 1...3, previousEpoch: "E2", previousSeq: 2)))])
    }

    @Test func anInitialSinceTheServerCannotCloseIsAGap() throws {
        var machine = Self.machine()
        let (id, _) = machine.subscribe("orders", from: .since(41, epoch: "E0"), now: Self.now)
        let opened = machine.received(.connected(clientID: "c-1"), now: Self.now)
        let frame = try #require(Self.sent(opened).first)
        #expect(frame["since"] as? Int == 41)
        #expect(frame["epoch"] as? String == "E0")
        let acked = machine.received(Self.subscribed(Self.requestID(opened), seq: 3, epoch: "E1", replayed: 3), now: Self.now)
        #expect(acked == [
            .subscribed(id), .deliver(id, .gap(PubSubGap(topic: "orders", epoch: "E1", missing: nil, previousEpoch: "E0", previousSeq: 41))),
        ])
    }

    @Test func aSinceBeyondTheTopicTakesWhatComes() {
        var machine = Self.machine()
        _ = machine.subscribe("orders", from: .since(100, epoch: nil), now: Self.now)
        let opened = machine.received(.connected(clientID: "c-1"), now: Self.now)
        let acked = machine.received(Self.subscribed(Self.requestID(opened), seq: 5), now: Self.now)
        #expect(Self.gaps(acked).isEmpty)
        #expect(Self.seqs(machine.received(Self.event(6), now: Self.now)) == [6])
    }

    @Test func theFirstConnectionFailingFailsEverythingAndRetriesNothing() {
        var machine = Self.machine()
        let (id, _) = machine.subscribe("orders", from: .latest, now: Self.now)
        let (ticket, _) = machine.publish("orders", try! RawJSON("1"), ack: true, now: Self.now)
        let failed = machine.connectionLost(.unreachable("connection refused"), jitter: 0)
        #expect(failed.contains(.connectFailed(.unreachable("connection refused"))))
        #expect(failed.contains(.finish(id, .unreachable("connection refused"))))
        #expect(failed.contains(.published(ticket: ticket!, .failure(.unreachable("connection refused")))))
        #expect(!failed.contains { if case .reconnect = $0 { true } else { false } })
        #expect(machine.connection == .idle)
        // A later call tries again.
        #expect(machine.connect() == [.connect])
    }

    @Test func aLostConnectionFailsPublishesInFlightAndSendsQueuedOnesAfter() throws {
        var (machine, _, _) = Self.subscribedMachine(seq: 0)
        let (inFlight, sentNow) = machine.publish("orders", try RawJSON(#"{"a":1}"#), ack: true, now: Self.now)
        let frame = try #require(Self.sent(sentNow).first)
        #expect(frame["type"] as? String == "publish")
        #expect((frame["message"] as? [String: Any])?["a"] as? Int == 1)
        let lost = machine.connectionLost(.disconnected, jitter: 0)
        #expect(lost.contains(.published(ticket: inFlight!, .failure(.disconnected))))
        // While away: queued, not failed, not sent.
        let (queued, whileAway) = machine.publish("orders", try RawJSON("2"), ack: true, now: Self.now)
        let (_, fireAndForget) = machine.publish("orders", try RawJSON("3"), ack: false, now: Self.now)
        #expect(whileAway.isEmpty && fireAndForget.isEmpty)
        _ = machine.reconnectDue()
        let reopened = machine.received(.connected(clientID: "c-2"), now: Self.now)
        let frames = Self.sent(reopened)
        #expect(frames.map { $0["type"] as? String } == ["subscribe", "publish", "publish"])
        #expect(frames[2]["ack"] as? Bool == false)
        let receipt = PublishReceipt(topic: "orders", messageID: "m", seq: 1, delivered: 1, dropped: 0)
        let requestID = try #require(frames[1]["request_id"] as? String)
        #expect(machine.received(.published(requestID: requestID, receipt), now: Self.now) == [.published(ticket: queued!, .success(receipt))])
    }

    @Test func backoffGrowsWithJitterUpToTheCeiling() {
        let backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(15))
        #expect(backoff.delay(attempt: 0, jitter: 0) == .milliseconds(250))
        #expect(backoff.delay(attempt: 0, jitter: 1) == .milliseconds(500))
        #expect(backoff.delay(attempt: 3, jitter: 0) == .seconds(2))
        #expect(backoff.delay(attempt: 3, jitter: 0.5) == .seconds(3))
        #expect(backoff.delay(attempt: 20, jitter: 1) == .seconds(15))
        #expect(backoff.delay(attempt: 1_000, jitter: 0) == .milliseconds(7_500))

        var (machine, _, _) = Self.subscribedMachine()
        var delays: [Duration] = []
        for _ in 0..<3 {
            for action in machine.connectionLost(.disconnected, jitter: 1) {
                if case .reconnect(let delay) = action { delays.append(delay) }
            }
            _ = machine.reconnectDue()
        }
        #expect(delays == [.milliseconds(500), .seconds(1), .seconds(2)])
        // A connection that opens resets the attempts.
        _ = machine.received(.connected(clientID: "c"), now: Self.now)
        let again = machine.connectionLost(.disconnected, jitter: 1)
        #expect(again.contains(.reconnect(after: .milliseconds(500))))
    }

    @Test func requestsTimeOut() throws {
        var (machine, _, _) = Self.subscribedMachine()
        let (ticket, _) = machine.publish("orders", try RawJSON("1"), ack: true, now: Self.now)
        #expect(machine.tick(now: Self.now + .seconds(9)).isEmpty)
        #expect(machine.tick(now: Self.now + .seconds(10)) == [.published(ticket: ticket!, .failure(.timeout))])
        #expect(machine.pendingRequests == 0)
    }

    @Test func refusalsAndDeletedTopicsEndTheSubscription() {
        var machine = Self.machine()
        let (id, _) = machine.subscribe("nope", from: .latest, now: Self.now)
        let opened = machine.received(.connected(clientID: "c"), now: Self.now)
        let refused = machine.received(.error(requestID: Self.requestID(opened), code: "TOPIC_NOT_FOUND", message: "no"), now: Self.now)
        #expect(refused == [.finish(id, .server(code: "TOPIC_NOT_FOUND", message: "no"))])
        #expect(machine.subscriptions.isEmpty)

        var (other, orders, _) = Self.subscribedMachine()
        #expect(other.received(.topicDeleted(topic: "orders"), now: Self.now) == [.finish(orders, .topicDeleted("orders"))])
        #expect(other.received(Self.event(1), now: Self.now).isEmpty)
        // Not resubscribed after a reconnect.
        #expect(Self.sent(Self.reconnect(&other)).isEmpty)
    }

    @Test func anUnavailableResubscribeIsRetriedFromTheSameSeq() throws {
        var (machine, id, _) = Self.subscribedMachine(seq: 3)
        var reopened = Self.reconnect(&machine)
        let refused = machine.received(.error(requestID: Self.requestID(reopened), code: "UNAVAILABLE", message: "redis"), now: Self.now)
        #expect(refused == [.resubscribe(id, after: .milliseconds(500))])
        reopened = machine.resubscribeDue(id, now: Self.now)
        let frame = try #require(Self.sent(reopened).first)
        #expect(frame["since"] as? Int == 3)
        // Again: the delay grows.
        let again = machine.received(.error(requestID: Self.requestID(reopened), code: "UNAVAILABLE", message: "redis"), now: Self.now)
        #expect(again == [.resubscribe(id, after: .seconds(1))])
        let third = machine.resubscribeDue(id, now: Self.now)
        #expect(machine.received(Self.subscribed(Self.requestID(third), seq: 3), now: Self.now).isEmpty)
        #expect(Self.seqs(machine.received(Self.event(4), now: Self.now)) == [4])
        // A first subscribe refused so throws instead.
        let (fresh, sent) = machine.subscribe("payments", from: .latest, now: Self.now)
        let unavailable = machine.received(.error(requestID: Self.requestID(sent), code: "UNAVAILABLE", message: "redis"), now: Self.now)
        #expect(unavailable == [.finish(fresh, .server(code: "UNAVAILABLE", message: "redis"))])
    }

    @Test func cancellingUnsubscribesAndANewSubscriptionReplacesTheOld() throws {
        var (machine, first, _) = Self.subscribedMachine()
        let (second, replaced) = machine.subscribe("orders", from: .lastN(3), now: Self.now)
        #expect(replaced.contains(.finish(first, nil)))
        #expect(Self.sent(replaced).map { $0["type"] as? String } == ["unsubscribe", "subscribe"])
        // The old one's late cancellation does not touch the new one.
        #expect(machine.cancel(first).isEmpty)
        let cancelled = machine.cancel(second)
        #expect(Self.sent(cancelled).map { $0["type"] as? String } == ["unsubscribe"])
        #expect(machine.subscriptions.isEmpty)
    }

    @Test func closingEndsEverything() throws {
        var (machine, id, _) = Self.subscribedMachine()
        let (ticket, _) = machine.publish("orders", try RawJSON("1"), ack: true, now: Self.now)
        let closed = machine.close()
        #expect(closed == [.published(ticket: ticket!, .failure(.closed)), .finish(id, nil), .disconnect])
        #expect(machine.connectionLost(.disconnected, jitter: 0).isEmpty)
        let after = machine.subscribe("orders", from: .latest, now: Self.now)
        #expect(after.actions == [.finish(after.id, .closed)])
    }

    @Test func patternsGetEveryMatchingEventAndAGapAfterAReconnect() throws {
        var machine = Self.machine()
        let (id, _) = machine.subscribe("orders.*", from: .latest, now: Self.now)
        let opened = machine.received(.connected(clientID: "c"), now: Self.now)
        let request = Self.requestID(opened)
        _ = machine.received(.subscribed(.init(requestID: request, topic: "orders.*", seq: 0, epoch: nil, replayed: 0, pattern: true)), now: Self.now)
        #expect(Self.seqs(machine.received(Self.event(7, "orders.eu"), now: Self.now)) == [7])
        #expect(Self.seqs(machine.received(Self.event(2, "orders.us"), now: Self.now)) == [2])
        #expect(machine.received(Self.event(3, "payments.eu"), now: Self.now).isEmpty)
        let reopened = Self.reconnect(&machine)
        let frame = try #require(Self.sent(reopened).first)
        #expect(frame["since"] == nil && frame["last_n"] == nil)
        let acked = machine.received(
            .subscribed(.init(requestID: Self.requestID(reopened), topic: "orders.*", seq: 0, epoch: nil, replayed: 0, pattern: true)), now: Self.now
        )
        #expect(acked == [.deliver(id, .gap(PubSubGap(topic: "orders.*", epoch: nil, missing: nil)))])
        #expect(ClientMachine.matches("orders.>", "orders.eu.1"))
        #expect(!ClientMachine.matches("orders.>", "orders"))
        #expect(!ClientMachine.matches("orders.*", "orders.eu.1"))
        // As the server's TopicPattern: no empty segment for `*`, nothing empty for `>`.
        #expect(!ClientMachine.matches("orders.*", "orders."))
        #expect(!ClientMachine.matches("orders.>", "orders."))
        #expect(ClientMachine.matches("orders.>", "orders..x"))
        #expect(ClientMachine.matches("orders.*.x", "orders.eu.x"))
    }
}
