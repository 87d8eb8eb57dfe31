import DenseCLModel
import XCTest

final class ArenaTests: XCTestCase {
    func testLayoutAlignsSlotsAndKeepsDeclarationOrder() {
        var layout = ArenaLayout()
        let a = layout.append("a", shape: [3])
        let b = layout.append("b.weight", shape: [2, 3, 1, 1], order: .convolutionChannelsLast)
        let c = layout.append("c", shape: [], element: .int64)
        XCTAssertEqual([a.offset, b.offset, c.offset], [0, 16, 32])
        XCTAssertEqual([a.ordinal, b.ordinal, c.ordinal], [0, 1, 2])
        XCTAssertEqual([a.count, b.count, c.count], [3, 6, 1])
        XCTAssertEqual(layout.count, 33)
        XCTAssertEqual(layout.tensorElements, 10)
        XCTAssertEqual(layout.slot("b.weight"), b)
        XCTAssertNil(layout.slot("d"))
    }

    func testArenaIsZeroedAndSlotsAreDisjoint() {
        let layout = ResNetTopology(ResNetArchitecture.resnet18.configuration).layouts().parameters
        let arena = Arena(layout: layout)
        XCTAssertTrue(arena.buffer.allSatisfy { $0 == 0 })
        var covered = [Bool](repeating: false, count: layout.count)
        for slot in layout.slots {
            XCTAssertEqual(slot.offset % ArenaLayout.alignment, 0, slot.name)
            for i in slot.range {
                XCTAssertFalse(covered[i], "\(slot.name) overlaps another slot at \(i)")
                covered[i] = true
            }
        }
        XCTAssertEqual(covered.filter { $0 }.count, layout.tensorElements)
    }

    func testCopyZeroAndNamedAccess() {
        var layout = ArenaLayout()
        layout.append("x", shape: [4])
        let a = Arena(layout: layout), b = Arena(layout: layout)
        _ = a["x"].update(fromContentsOf: [1, 2, 3, 4] as [Float])
        b.copy(from: a)
        XCTAssertEqual(Array(b["x"]), [1, 2, 3, 4])
        a.zero()
        XCTAssertEqual(Array(a["x"]), [0, 0, 0, 0])
        XCTAssertEqual(Array(b["x"]), [1, 2, 3, 4])
    }

    /// A convolution weight stored channels-last comes back in PyTorch's order, element for element.
    func testStorageOrderRoundTrip() {
        var layout = ArenaLayout()
        let slot = layout.append("w", shape: [2, 3, 2, 2], order: .convolutionChannelsLast)
        let arena = Arena(layout: layout)
        let pytorch = (0..<24).map { Float($0) }
        pytorch.withUnsafeBufferPointer { slot.storeFromPyTorch($0, into: arena.pointer(slot)) }
        // [O, I, kh, kw] element (o, i, y, x) = o*12 + i*4 + y*2 + x sits at [O, kh, kw, I] index o*12 + (y*2+x)*3 + i.
        XCTAssertEqual(arena.values(slot)[0 * 12 + (1 * 2 + 0) * 3 + 2], Float(0 * 12 + 2 * 4 + 1 * 2 + 0))
        XCTAssertEqual(arena.values(slot)[1 * 12 + (0 * 2 + 1) * 3 + 1], Float(1 * 12 + 1 * 4 + 0 * 2 + 1))
        var back = [Float](repeating: -1, count: 24)
        back.withUnsafeMutableBufferPointer { slot.loadAsPyTorch(from: arena.pointer(slot), into: $0) }
        XCTAssertEqual(back, pytorch)
    }
}
