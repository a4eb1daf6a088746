import Synchronization

// ThreadSanitizer cannot see `Synchronization.Mutex` hand a contended lock from one thread to
// the next on Linux. Uncontended, the lock and unlock are compare-exchanges inlined into our
// (instrumented) code, with acquire and release ordering, and TSan sees them. Contended, the
// lock is taken in `_lockSlow` (a spin of compare-exchanges, then FUTEX_LOCK_PI, where the
// kernel writes the new owner into the lock word) and released in `_unlockSlow`
// (FUTEX_UNLOCK_PI): code of the prebuilt, uninstrumented libswiftSynchronization.so and the
// kernel, so TSan sees neither side. Every access to state a contended Mutex guards then looks
// like a race (a ThreadSanitizer run of the tests reported 55 of them, two publishers of one
// topic in `Topic.publish`, all inside `withLock`).
//
// A ThreadSanitizer build (scripts/sanitizers.sh compiles with `-Xswiftc -DPUBSUB_TSAN`) tells
// TSan itself: `__tsan_acquire` once the lock is held, `__tsan_release` before it is let go, on
// the address of the object that owns the lock, which is exactly the happens-before a mutex
// gives. Any other build compiles `withLock(of:_:)` to the plain `withLock` (transparent: the
// publish path's instruction count, scripts/count-instructions.sh pipe and pipe-single, is
// the same as before to the instruction; an always-inline wrapper cost 7 a message).

#if PUBSUB_TSAN
@usableFromInline @_silgen_name("__tsan_acquire") func tsanAcquire(_ address: UnsafeRawPointer)
@usableFromInline @_silgen_name("__tsan_release") func tsanRelease(_ address: UnsafeRawPointer)
#endif

extension Mutex where Value: ~Copyable {
    #if PUBSUB_TSAN
    /// `withLock(_:)`, with the lock's hand-over between threads shown to ThreadSanitizer.
    /// `owner` is the object the mutex is stored in (one mutex per object): its address names
    /// the lock to TSan.
    @inlinable @inline(__always)
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        of owner: AnyObject, _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let address = UnsafeRawPointer(Unmanaged.passUnretained(owner).toOpaque())
        return try withLock { (value: inout sending Value) throws(E) -> sending Result in
            tsanAcquire(address)
            defer { tsanRelease(address) }
            return try body(&value)
        }
    }
    #else
    /// `withLock(_:)` itself (in ThreadSanitizer builds, the lock's hand-over is also shown to
    /// TSan). `owner` is the object the mutex is stored in.
    @_transparent
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        of owner: AnyObject, _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        try withLock(body)
    }
    #endif
}
