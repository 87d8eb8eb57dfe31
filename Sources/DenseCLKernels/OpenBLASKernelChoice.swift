import COpenBLAS
import Foundation

/// Which of OpenBLAS's kernel sets a process should run with, and the relaunch that applies it.
///
/// OpenBLAS builds with every kernel set (`DYNAMIC_ARCH`, as distributions ship it) pick one per CPU when the library
/// loads, and the pick can be wrong for a CPU newer than the library: OpenBLAS 0.3.21 gives AMD Zen 4 (family 19h
/// with AVX-512) its Cooperlake kernels, written for Intel's full-width AVX-512 units, while Zen 4 runs AVX-512 on
/// 256-bit units and its Haswell (AVX2) kernels are faster: measured 6-8 % on a whole two-lane training step and
/// 7-12 % on a one-thread step (docs/performance.md). The library reads `OPENBLAS_CORETYPE` only while it loads,
/// so the choice takes a fresh process image: ``relaunchWithPreferredKernels()``.
///
/// The user's own `OPENBLAS_CORETYPE` always wins; `DENSECL_KEEP_BLAS_KERNELS=1` keeps OpenBLAS's pick.
public enum OpenBLASKernelChoice {
    /// The kernel set to ask for (`OPENBLAS_CORETYPE`), or nil to keep OpenBLAS's own pick.
    /// - Parameters:
    ///   - vendor: `/proc/cpuinfo`'s `vendor_id`; `family`: its `cpu family`; `avx512`: whether `flags` has avx512f.
    ///   - openBLASPick: `openblas_get_corename()` of the loaded library.
    public static func preferredCoreType(vendor: String, family: Int, avx512: Bool, openBLASPick: String) -> String? {
        let zen4 = vendor == "AuthenticAMD" && family == 0x19 && avx512
        let wideAVX512Kernels = ["cooperlake", "skylakex", "sapphirerapids"].contains(openBLASPick.lowercased())
        return zen4 && wideAVX512Kernels ? "Haswell" : nil
    }

    /// The kernel set OpenBLAS picked for this process.
    public static var currentCoreType: String { String(cString: openblas_get_corename()) }

    /// ``preferredCoreType(vendor:family:avx512:openBLASPick:)`` for this machine (nil when `/proc/cpuinfo` cannot be
    /// read).
    public static func preferredCoreTypeHere() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.isEmpty { break }  // the first processor's block is enough
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            fields[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        guard let vendor = fields["vendor_id"], let family = fields["cpu family"].flatMap({ Int($0) }) else { return nil }
        let avx512 = (fields["flags"] ?? "").split(separator: " ").contains("avx512f")
        return preferredCoreType(vendor: vendor, family: family, avx512: avx512, openBLASPick: currentCoreType)
    }

    /// Replaces this process with a fresh copy of itself (same arguments and environment, plus
    /// `OPENBLAS_CORETYPE`) when this machine has a better kernel set than the one OpenBLAS picked; returns when
    /// there is nothing to change, the user set `OPENBLAS_CORETYPE` or `DENSECL_KEEP_BLAS_KERNELS`, or the relaunch
    /// fails (the process then simply goes on with OpenBLAS's pick).
    ///
    /// For executables only, as the first thing their `main` does (before threads or files are opened).
    public static func relaunchWithPreferredKernels() {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"] == nil, environment["DENSECL_KEEP_BLAS_KERNELS"] == nil,
            let coreType = preferredCoreTypeHere()
        else { return }
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // Only reached when execv failed: go on as we are, without the variable (children would inherit it).
        unsetenv("OPENBLAS_CORETYPE")
        for pointer in argv { free(pointer) }
    }
}
