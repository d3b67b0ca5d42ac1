import Foundation

/// Escaping and number formatting shared by the report renderers.
///
/// Every piece of text that came from a report (broker URLs, reasons, names, the scenario file) is
/// untrusted: it goes through one of the escaping functions here before it reaches Markdown, HTML,
/// SVG or XML.
enum ReportText {
    // MARK: Escaping

    /// Escapes text for HTML and SVG element content and double- or single-quoted attributes.
    static func html(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default:
                if isAllowedInXML(scalar) {
                    result.unicodeScalars.append(scalar)
                } else {
                    result += "\u{FFFD}"
                }
            }
        }
        return result
    }

    /// Escapes text for XML 1.0 content and attributes, replacing characters XML 1.0 forbids.
    ///
    /// Newlines and tabs in attributes become character references so parsers keep them.
    static func xml(_ text: String, attribute: Bool = false) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case "\n" where attribute: result += "&#10;"
            case "\r" where attribute: result += "&#13;"
            case "\t" where attribute: result += "&#9;"
            default:
                if isAllowedInXML(scalar) {
                    result.unicodeScalars.append(scalar)
                } else {
                    result += "\u{FFFD}"
                }
            }
        }
        return result
    }

    /// Escapes free text for one Markdown table cell: no line breaks, no table pipes, and no
    /// character that Markdown or GitHub's HTML pass would interpret.
    static func markdown(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n", "\r", "\t": result += " "
            case "\\", "|", "<", ">", "*", "_", "`", "[", "]", "&", "#", "~", "!":
                result += "\\"
                result.unicodeScalars.append(scalar)
            default:
                if isAllowedInXML(scalar) {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }

    /// An identifier (workload, broker, scenario) as a Markdown code span that is safe in a table.
    static func markdownCode(_ text: String) -> String {
        var cleaned = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n", "\r", "\t": cleaned += " "
            case "`": cleaned += "'"
            case "|": cleaned += "\\|"
            default:
                if isAllowedInXML(scalar) { cleaned.unicodeScalars.append(scalar) }
            }
        }
        return cleaned.isEmpty ? "` `" : "`\(cleaned)`"
    }

    private static func isAllowedInXML(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x9, 0xA, 0xD: true
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: true
        default: false
        }
    }

    // MARK: Numbers

    /// A number with thousands separators and at most `decimals` fraction digits: `12,345.6`.
    static func number(_ value: Double, decimals: Int = 0) -> String {
        guard value.isFinite else { return value.isNaN ? "–" : (value > 0 ? "∞" : "−∞") }
        let negative = value < 0
        let scale = pow(10.0, Double(decimals))
        let rounded = (abs(value) * scale).rounded() / scale
        let integerPart = rounded.rounded(.down)
        var digits = String(format: "%.0f", integerPart)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits.removeLast(3)
        }
        grouped = digits + grouped
        if decimals > 0 {
            let fraction = String(format: "%.\(decimals)f", rounded - integerPart).dropFirst(1)
            let trimmed = fraction.reversed().drop(while: { $0 == "0" }).reversed()
            if trimmed.count > 1 { grouped += String(trimmed) }
        }
        return (negative && rounded != 0 ? "−" : "") + grouped
    }

    /// A short axis label: `950`, `1.5k`, `25k`, `1.2M`, `3G`.
    static func compact(_ value: Double) -> String {
        let magnitude = abs(value)
        switch magnitude {
        case 1e9...: return number(value / 1e9, decimals: 2) + "G"
        case 1e6...: return number(value / 1e6, decimals: 2) + "M"
        case 1e4...: return number(value / 1e3, decimals: 1) + "k"
        case 1e3...: return number(value / 1e3, decimals: 2) + "k"
        default: return number(value, decimals: magnitude < 10 ? 2 : 1)
        }
    }

    /// A rate in messages per second for tables: `12,345` or `0.5`.
    static func rate(_ value: Double) -> String {
        abs(value) >= 100 ? number(value) : number(value, decimals: 1)
    }

    /// Microseconds shown as milliseconds with about three significant digits: `0.0125`, `1.25`, `125`, `1,250`.
    static func milliseconds(fromMicroseconds micros: Double) -> String {
        let ms = micros / 1000
        switch abs(ms) {
        case 0: return "0"
        case ..<0.01: return number(ms, decimals: 4)
        case ..<0.1: return number(ms, decimals: 3)
        case ..<10: return number(ms, decimals: 2)
        case ..<100: return number(ms, decimals: 1)
        default: return number(ms)
        }
    }

    /// A byte count in binary units: `512 B`, `1.5 KiB`, `16.0 GiB`.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var scaled = value
        var unit = 0
        while abs(scaled) >= 1024, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        return unit == 0 ? "\(number(scaled)) \(units[unit])" : String(format: "%.1f %@", scaled, units[unit])
    }

    /// Bytes per second as megabytes (10⁶ bytes) per second: `12.3`.
    static func megabytesPerSecond(_ bytesPerSecond: Double) -> String {
        let mb = bytesPerSecond / 1_000_000
        return mb >= 100 ? number(mb) : number(mb, decimals: 2)
    }

    /// Seconds with a sensible number of digits: `0.012`, `1.25`, `63.2`, `1,204`.
    static func seconds(_ value: Double) -> String {
        switch abs(value) {
        case ..<1: number(value, decimals: 3)
        case ..<10: number(value, decimals: 2)
        case ..<1000: number(value, decimals: 1)
        default: number(value)
        }
    }

    /// A signed relative change: `+12.5%`, `−20.0%`.
    static func percentChange(_ ratio: Double) -> String {
        guard ratio.isFinite else { return ratio > 0 ? "+∞" : "–" }
        let percent = ratio * 100
        let sign = percent > 0.0005 ? "+" : (percent < -0.0005 ? "−" : "±")
        return sign + String(format: "%.1f%%", abs(percent))
    }

    /// A fraction as a percentage without trailing zeros: `0.1` → `10%`, `0.025` → `2.5%`.
    static func percent(_ fraction: Double) -> String {
        number(fraction * 100, decimals: 2) + "%"
    }

    /// An ISO 8601 UTC timestamp: `2026-11-29T03:45:01Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
