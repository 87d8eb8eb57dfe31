import DenseCLKernels
import XCTest

/// The kernel-set rule: only AMD family 19h with AVX-512 (Zen 4) given OpenBLAS's wide AVX-512 kernels is moved to
/// Haswell's; everything else keeps OpenBLAS's pick (Intel AVX-512 machines run their AVX-512 kernels best).
final class OpenBLASKernelChoiceTests: XCTestCase {
    func testZen4WithWideAVX512KernelsGetsHaswell() {
        XCTAssertEqual(
            OpenBLASKernelChoice.preferredCoreType(vendor: "AuthenticAMD", family: 25, avx512: true, openBLASPick: "Cooperlake"),
            "Haswell")
        XCTAssertEqual(
            OpenBLASKernelChoice.preferredCoreType(vendor: "AuthenticAMD", family: 25, avx512: true, openBLASPick: "SkylakeX"),
            "Haswell")
    }

    func testOtherMachinesKeepOpenBLASsPick() {
        // Intel AVX-512, Zen 3 (same family, no AVX-512), Zen 5 (family 1Ah), and a pick that is already AVX2.
        XCTAssertNil(OpenBLASKernelChoice.preferredCoreType(vendor: "GenuineIntel", family: 6, avx512: true, openBLASPick: "Cooperlake"))
        XCTAssertNil(OpenBLASKernelChoice.preferredCoreType(vendor: "AuthenticAMD", family: 25, avx512: false, openBLASPick: "Zen"))
        XCTAssertNil(OpenBLASKernelChoice.preferredCoreType(vendor: "AuthenticAMD", family: 26, avx512: true, openBLASPick: "SkylakeX"))
        XCTAssertNil(OpenBLASKernelChoice.preferredCoreType(vendor: "AuthenticAMD", family: 25, avx512: true, openBLASPick: "Haswell"))
    }

    func testTheRelaunchAddsOnlyWhatTheUserDidNotSet() {
        let both = OpenBLASKernelChoice.missingVariables(in: [:], preferredCoreType: "Haswell")
        XCTAssertEqual(both, ["OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_THREAD_TIMEOUT": "4"])
        XCTAssertEqual(
            OpenBLASKernelChoice.missingVariables(in: ["OPENBLAS_CORETYPE": "SkylakeX"], preferredCoreType: nil),
            ["OPENBLAS_THREAD_TIMEOUT": "4"])
        XCTAssertEqual(
            OpenBLASKernelChoice.missingVariables(
                in: ["OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_THREAD_TIMEOUT": "28"], preferredCoreType: nil), [:])
        XCTAssertEqual(OpenBLASKernelChoice.missingVariables(in: ["DENSECL_KEEP_BLAS_KERNELS": "1"], preferredCoreType: "Haswell"), [:])
    }
}
