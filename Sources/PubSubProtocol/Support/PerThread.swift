#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What each thread keeps for itself in this module, in one thread-local slot (no lock, nothing
/// shared, no reference counting to reach it): the last timestamp it formatted (``Timestamp``)
/// and the last topic name it decoded (``RecentTopicName``).
struct PerThread {
    /// The milliseconds of `timestamp`; `Int64.min` until one is formatted.
    var timestampMillis = Int64.min
    /// The 24 bytes of the last timestamp formatted.
    var timestamp: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var topicName: String?
    /// The UTF-8 bytes of `topicName` (0 while there is none) and, for a short one, those
    /// bytes in two words.
    var topicNameCount = 0
    var topicNameWords: (UInt64, UInt64) = (0, 0)

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { pointer in
            // Optional on Linux, not on Darwin.
            guard let pointer = pointer as UnsafeMutableRawPointer? else { return }
            let slot = pointer.assumingMemoryBound(to: PerThread.self)
            slot.deinitialize(count: 1)
            slot.deallocate()
        }
        precondition(created == 0, "pthread_key_create failed")
        return key
    }()

    /// This thread's slot; the pointer is valid on this thread while it runs.
    static var current: UnsafeMutablePointer<PerThread> {
        if let pointer = pthread_getspecific(key) { return pointer.assumingMemoryBound(to: PerThread.self) }
        let slot = UnsafeMutablePointer<PerThread>.allocate(capacity: 1)
        slot.initialize(to: PerThread())
        pthread_setspecific(key, slot)
        return slot
    }
}
