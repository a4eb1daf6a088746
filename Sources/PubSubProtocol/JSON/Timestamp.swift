import NIOCore

/// ISO-8601 UTC timestamps with milliseconds (`2026-11-23T10:00:00.123Z`), as every frame's `ts`.
public enum Timestamp {
    public static func iso8601(millis: Int64) -> String {
        withISO8601(millis: millis) { String(decoding: $0, as: UTF8.self) }
    }

    /// The 24 bytes of the timestamp. Every frame carries one, and a busy thread writes many
    /// within the same millisecond: each thread keeps the last one it formatted. (`body` must
    /// not format a timestamp itself.)
    public static func withISO8601<R>(millis: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let last = PerThread.current
        if last.pointee.timestampMillis != millis {
            last.pointee.timestampMillis = millis
            withUnsafeMutableBytes(of: &last.pointee.timestamp) { raw in
                var sink = StackSink(raw)
                format(millis: millis, into: &sink)
            }
        }
        return withUnsafeBytes(of: &last.pointee.timestamp) { body(UnsafeRawBufferPointer(rebasing: $0[0..<24])) }
    }

    /// Writes into a fixed stack buffer of 24 bytes.
    private struct StackSink {
        let raw: UnsafeMutableRawBufferPointer
        var count = 0
        init(_ raw: UnsafeMutableRawBufferPointer) { self.raw = raw }
        @inline(__always) mutating func append(_ byte: UInt8) {
            raw[count] = byte
            count += 1
        }
    }

    /// Civil-from-days conversion (proleptic Gregorian), no Foundation formatter involved.
    private static func format(millis: Int64, into buffer: inout StackSink) {
        let ms = Int(((millis % 1000) + 1000) % 1000)
        let seconds = (millis - Int64(ms)) / 1000
        var days = Int(seconds / 86_400)
        var secOfDay = Int(seconds % 86_400)
        if secOfDay < 0 { secOfDay += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)

        // Constant divisors only: the compiler turns them into multiplications.
        let hour = secOfDay / 3600
        let minute = secOfDay / 60 % 60
        let second = secOfDay % 60
        two(year / 100, &buffer)
        two(year % 100, &buffer)
        buffer.append(UInt8(ascii: "-"))
        two(month, &buffer)
        buffer.append(UInt8(ascii: "-"))
        two(day, &buffer)
        buffer.append(UInt8(ascii: "T"))
        two(hour, &buffer)
        buffer.append(UInt8(ascii: ":"))
        two(minute, &buffer)
        buffer.append(UInt8(ascii: ":"))
        two(second, &buffer)
        buffer.append(UInt8(ascii: "."))
        buffer.append(UInt8(ascii: "0") + UInt8(ms / 100))
        two(ms % 100, &buffer)
        buffer.append(UInt8(ascii: "Z"))
    }

    /// Two decimal digits of `value` (0...99).
    @inline(__always)
    private static func two(_ value: Int, _ buffer: inout StackSink) {
        buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value / 10))
        buffer.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10))
    }
}
