import Foundation

/// Renders a report's conformance results as JUnit XML, the format CI systems display as tests.
///
/// One `<testsuite>` per broker (named after it, with the redacted URL as a property), one
/// `<testcase>` per scenario with `classname` set to its category and `time` in seconds. A failed
/// scenario carries `<failure message="reason">` with its message counts; a skipped one
/// `<skipped message="reason"/>`. A status other than `passed`, `failed` or `skipped` is reported
/// as an `<error>`, so it is never mistaken for a pass. A report without conformance results gives
/// an empty but valid `<testsuites tests="0">`.
///
/// ```swift
/// let xml = JUnitReport.render(report)
/// try xml.write(to: folder.appendingPathComponent("junit.xml"), atomically: true, encoding: .utf8)
/// ```
public enum JUnitReport {
    /// Renders the conformance results of `report`.
    ///
    /// - Parameter report: The report whose ``RunReport/conformance`` to render.
    /// - Returns: An XML 1.0 document in UTF-8.
    public static func render(_ report: RunReport) -> String {
        let suites = report.conformance
        let all = suites.flatMap(\.scenarios)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"\(attr("jadugar conformance " + report.runID))\" tests=\"\(all.count)\""
        xml += " failures=\(quoted(all.filter { isFailure($0) }.count)) errors=\(quoted(all.filter { isError($0) }.count))"
        xml += " skipped=\(quoted(all.filter { $0.outcome == .skipped }.count)) time=\(quoted(seconds(suites.reduce(0) { $0 + $1.durationSeconds })))"
        xml += " timestamp=\"\(attr(ReportText.timestamp(report.startedAt)))\">\n"
        for suite in suites {
            let entries = suite.scenarios
            xml += "  <testsuite name=\"\(attr(suite.broker))\" tests=\"\(entries.count)\""
            xml += " failures=\(quoted(entries.filter { isFailure($0) }.count)) errors=\(quoted(entries.filter { isError($0) }.count))"
            xml += " skipped=\(quoted(entries.filter { $0.outcome == .skipped }.count)) time=\(quoted(seconds(suite.durationSeconds)))"
            xml += " timestamp=\"\(attr(ReportText.timestamp(report.startedAt)))\" hostname=\"\(attr(report.environment.hostname))\">\n"
            xml += "    <properties>\n"
            xml += "      <property name=\"broker.url\" value=\"\(attr(suite.url))\"/>\n"
            if let version = report.environment.brokers.first(where: { $0.name == suite.broker })?.version {
                xml += "      <property name=\"broker.version\" value=\"\(attr(version))\"/>\n"
            }
            xml += "      <property name=\"run.id\" value=\"\(attr(report.runID))\"/>\n"
            xml += "    </properties>\n"
            for entry in entries {
                xml += "    <testcase name=\"\(attr(entry.scenario))\" classname=\"\(attr(entry.category))\" time=\(quoted(seconds(entry.durationSeconds)))"
                let counts = "published=\(entry.published) delivered=\(entry.delivered) duplicates=\(entry.duplicates) lost=\(entry.lost)"
                switch entry.outcome {
                case .passed:
                    xml += ">\n      <system-out>\(text(counts))</system-out>\n    </testcase>\n"
                case .skipped:
                    xml += ">\n      <skipped message=\"\(attr(entry.reason ?? "skipped"))\"/>\n    </testcase>\n"
                case .failed:
                    let reason = entry.reason ?? "failed without a reason"
                    let element = isError(entry) ? "error" : "failure"
                    let message = isError(entry) ? "unknown status \"\(entry.status)\": \(reason)" : reason
                    xml += ">\n      <\(element) message=\"\(attr(message))\" type=\"\(element == "error" ? "UnknownStatus" : "ConformanceFailure")\">"
                    xml += text("\(message)\n\(counts)")
                    xml += "</\(element)>\n    </testcase>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }

    private static func isError(_ entry: ConformanceEntry) -> Bool {
        entry.outcome == .failed && entry.status != "failed"
    }

    private static func isFailure(_ entry: ConformanceEntry) -> Bool {
        entry.outcome == .failed && !isError(entry)
    }

    private static func attr(_ value: String) -> String {
        ReportText.xml(value, attribute: true)
    }

    private static func text(_ value: String) -> String {
        ReportText.xml(value)
    }

    private static func quoted(_ value: Int) -> String {
        "\"\(value)\""
    }

    private static func quoted(_ value: String) -> String {
        "\"\(value)\""
    }

    private static func seconds(_ value: Double) -> String {
        String(format: "%.3f", value.isFinite ? Swift.max(value, 0) : 0)
    }
}
