import AgentBoxACP
import Foundation
import Testing

/// What an agent writes on its stdout is hostile: lines are split in time linear in what arrives, and bounded.
@Suite("ACP line splitter")
struct LineSplitterTests {
    @Test func splitsLinesAcrossPiecesAndKeepsThePartialOne() throws {
        var splitter = LineSplitter(maximum: 64)
        #expect(try splitter.append(Array("ab".utf8)).isEmpty)
        #expect(try splitter.append(Array("c\nd\n\ne".utf8)).map { String(decoding: $0, as: UTF8.self) } == ["abc", "d", ""])
        #expect(try splitter.append(Array("f\n".utf8)).map { String(decoding: $0, as: UTF8.self) } == ["ef"])
    }

    @Test func aLongLineIsRefusedOnceItPassesTheMaximum() throws {
        var splitter = LineSplitter(maximum: 1 << 20)
        let piece = [UInt8](repeating: 0x61, count: 64 << 10)
        var refused = false
        for _ in 0..<32 {
            do { _ = try splitter.append(piece) } catch is LineSplitter.LineTooLong {
                refused = true
                break
            }
        }
        #expect(refused)
    }

    /// 8 MiB without a newline in 4 KiB pieces, then many short lines in one piece: every byte arrives whole, in
    /// order. (The search went over the whole kept line for every piece before, quadratic in its length; how long this
    /// takes is the benchmark's business, not this test's.)
    @Test func aFloodInSmallPiecesArrivesWhole() throws {
        var splitter = LineSplitter(maximum: 64 << 20)
        let piece = [UInt8](repeating: 0x61, count: 4 << 10)
        for _ in 0..<(8 << 20) / piece.count { #expect(try splitter.append(piece).isEmpty) }
        let lines = try splitter.append(Array(String(repeating: "\nx", count: 10_000).utf8))
        #expect(lines.count == 10_000 && lines[0].count == 8 << 20 && lines[1] == Data("x".utf8))
    }
}
