import Testing

@testable import PubSubServer

/// What `pubsub serve` sets in `GLIBC_TUNABLES` before executing itself again (the exec itself
/// is checked by hand: `tr '\0' '\n' < /proc/PID/environ` of a running server).
@Suite("Malloc tuning")
struct MallocTuningTests {
    let setting = "glibc.malloc.tcache_count=8192"

    @Test func setsTheCacheSizeWhenNothingIsSet() {
        #expect(MallocTuning.tunables(current: nil, optOut: nil) == setting)
        #expect(MallocTuning.tunables(current: "", optOut: nil) == setting)
    }

    @Test func keepsTheOperatorsOtherTunables() {
        #expect(
            MallocTuning.tunables(current: "glibc.malloc.arena_max=2", optOut: nil)
                == "glibc.malloc.arena_max=2:" + setting
        )
    }

    @Test func leavesAnOperatorsOwnCountAlone() {
        #expect(MallocTuning.tunables(current: "glibc.malloc.tcache_count=50", optOut: nil) == nil)
        #expect(MallocTuning.tunables(current: "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0", optOut: nil) == nil)
        // A longer name that merely starts the same is another tunable.
        #expect(
            MallocTuning.tunables(current: "glibc.malloc.tcache_count_x=1", optOut: nil)
                == "glibc.malloc.tcache_count_x=1:" + setting
        )
    }

    @Test func doesNothingWhenTurnedOffOrAlreadyDone() {
        #expect(MallocTuning.tunables(current: nil, optOut: "off") == nil)
        #expect(MallocTuning.tunables(current: nil, optOut: nil, marker: "1") == nil)
        #expect(MallocTuning.tunables(current: nil, optOut: "on") == setting)
    }
}
