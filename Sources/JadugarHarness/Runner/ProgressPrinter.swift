import Foundation
import Synchronization

/// The live progress line: rewritten in place on a terminal, a plain line every few seconds otherwise.
public final class ProgressPrinter: Sendable {
    private let isTerminal: Bool
    private let quiet: Bool
    private let lastLine = Mutex<ContinuousClock.Instant?>(nil)

    /// Creates a printer for standard error.
    public init(quiet: Bool = false) {
        self.quiet = quiet
        self.isTerminal = isatty(STDERR_FILENO) == 1
    }

    func update(_ text: String) {
        guard !quiet else { return }
        if isTerminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
            return
        }
        let now = ContinuousClock.now
        let due = lastLine.withLock { last -> Bool in
            if let previous = last, now - previous < .seconds(5) { return false }
            last = now
            return true
        }
        if due { FileHandle.standardError.write(Data("\(text)\n".utf8)) }
    }

    func finish(_ text: String) {
        guard !quiet else { return }
        lastLine.withLock { $0 = nil }
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }
}
