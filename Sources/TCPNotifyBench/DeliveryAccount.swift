/// The account every record-rate part keeps: what was written into the ring, what reached the consumer,
/// and what was counted as dropped on the way. Whatever is in none of them is lost silently, which is
/// what the targets forbid.
struct DeliveryAccount {
    /// Records (or lines) per second over the measured window.
    var perSecond: Double
    /// Records the kernel (or the synthetic producer) wrote into the ring.
    var written: UInt64
    /// Records the consumer got: delivered to the API, or lines read from `watch`.
    var delivered: UInt64
    /// Records the kernel could not reserve space for (ring full): counted, not written.
    var ringDrops: UInt64
    /// Records read from the ring and refused by the reader (malformed).
    var userDrops: UInt64

    /// Written but neither delivered nor counted as a user drop.
    var unaccounted: Int64 { Int64(written) - Int64(delivered) - Int64(userDrops) }

    /// How the consumer's side is named in the rows: "delivered" for the API, "read" for `watch`'s lines.
    var consumerVerb = "delivered"

    /// The rows every part shows, in this order: rate, consumer total, written, both drops, unaccounted.
    func rows(rateLabel: String, consumedLabel: String, writtenLabel: String) -> [[String]] {
        [
            [rateLabel, BenchFormat.number(perSecond)],
            [consumedLabel, BenchFormat.number(Double(delivered))],
            [writtenLabel, BenchFormat.number(Double(written))],
            ["ring_drops (ring full)", BenchFormat.number(Double(ringDrops))],
            ["user_drops (malformed)", BenchFormat.number(Double(userDrops))],
            ["unaccounted (written − \(consumerVerb) − user_drops)", "\(unaccounted)"],
        ]
    }

    /// The JSON figures, named by the part (its names predate this type and stay as they were).
    struct FigureNames {
        var perSecond: String, delivered: String, written: String, ringDrops: String, userDrops: String, unaccounted: String
    }

    func figures(_ names: FigureNames) -> [String: Double] {
        [
            names.perSecond: perSecond, names.delivered: Double(delivered), names.written: Double(written),
            names.ringDrops: Double(ringDrops), names.userDrops: Double(userDrops), names.unaccounted: Double(unaccounted),
        ]
    }

    /// The verdict: at least `goalPerSecond`, and nothing unaccounted.
    func target(name: String, goalPerSecond: Double, note: String) -> BenchTarget {
        BenchTarget(
            name: name, target: "≥ \(BenchFormat.number(goalPerSecond))/s, no unaccounted loss",
            measured: "\(BenchFormat.number(perSecond))/s, \(BenchFormat.number(Double(ringDrops))) ring drops, \(unaccounted) unaccounted",
            met: perSecond >= goalPerSecond && unaccounted == 0,
            note: note)
    }
}
