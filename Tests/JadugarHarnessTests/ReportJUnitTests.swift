import Foundation
import JadugarHarness
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("JUnit XML report")
struct ReportJUnitTests {
    static func parse(_ xml: String) throws -> XMLElement {
        let document = try XMLDocument(data: Data(xml.utf8))
        return try #require(document.rootElement())
    }

    @Test("one testsuite per broker, one testcase per scenario, failures and skips marked")
    func structure() throws {
        let root = try Self.parse(JUnitReport.render(ReportFixture.report()))
        #expect(root.name == "testsuites")
        #expect(root.attribute(forName: "tests")?.stringValue == "24")
        #expect(root.attribute(forName: "failures")?.stringValue == "1")
        #expect(root.attribute(forName: "skipped")?.stringValue == "2")
        let suites = root.elements(forName: "testsuite")
        #expect(suites.map { $0.attribute(forName: "name")?.stringValue } == ["memory", "redis"])

        let redis = suites[1]
        #expect(redis.attribute(forName: "failures")?.stringValue == "1")
        #expect(redis.attribute(forName: "time")?.stringValue == "41.700")
        let cases = redis.elements(forName: "testcase")
        #expect(cases.count == 12)
        let rebalance = try #require(cases.first { $0.attribute(forName: "name")?.stringValue == "groups.rebalance" })
        #expect(rebalance.attribute(forName: "classname")?.stringValue == "groups")
        #expect(rebalance.attribute(forName: "time")?.stringValue == "10.020")
        let failure = try #require(rebalance.elements(forName: "failure").first)
        #expect(failure.attribute(forName: "message")?.stringValue == "expected 1000 deliveries within 10 s, got 997 (3 lost)")
        #expect(failure.stringValue?.contains("lost=3") == true)

        let timeout = try #require(cases.first { $0.attribute(forName: "name")?.stringValue == "request-reply.timeout" })
        #expect(timeout.elements(forName: "skipped").first?.attribute(forName: "message")?.stringValue == "capability requestReply not declared")

        let passed = try #require(cases.first { $0.attribute(forName: "name")?.stringValue == "delivery.at-least-once" })
        #expect(passed.elements(forName: "failure").isEmpty && passed.elements(forName: "skipped").isEmpty)
    }

    @Test("reasons with markup, quotes, newlines and control characters stay valid XML")
    func escaping() throws {
        var report = ReportFixture.report()
        let reason = "a < b && c > \"d\" 'e'\nline two\u{0001}\u{001B}[31m"
        report.conformance[0].scenarios[0].status = "failed"
        report.conformance[0].scenarios[0].reason = reason
        report.conformance[0].url = "amqp://user:***@host/?x=1&y=<2>"
        let root = try Self.parse(JUnitReport.render(report))
        let suite = try #require(root.elements(forName: "testsuite").first)
        let failure = try #require(suite.elements(forName: "testcase").first?.elements(forName: "failure").first)
        #expect(failure.attribute(forName: "message")?.stringValue?.hasPrefix("a < b && c > \"d\" 'e'\nline two") == true)
        let property = try #require(suite.elements(forName: "properties").first?.elements(forName: "property").first)
        #expect(property.attribute(forName: "value")?.stringValue == "amqp://user:***@host/?x=1&y=<2>")
    }

    @Test("an unknown status is an error, never a pass")
    func unknownStatus() throws {
        var report = ReportFixture.report()
        report.conformance[0].scenarios[0].status = "flaky"
        let root = try Self.parse(JUnitReport.render(report))
        #expect(root.attribute(forName: "errors")?.stringValue == "1")
        let testcase = try #require(root.elements(forName: "testsuite").first?.elements(forName: "testcase").first)
        #expect(!testcase.elements(forName: "error").isEmpty)
    }

    @Test("no conformance results give an empty but valid document")
    func empty() throws {
        let root = try Self.parse(JUnitReport.render(ReportFixture.minimalReport()))
        #expect(root.attribute(forName: "tests")?.stringValue == "0")
        #expect(root.elements(forName: "testsuite").isEmpty)
    }
}
