import Foundation

/// One self-contained HTML page for one or more validation reports: inline CSS and SVG charts,
/// nothing fetched. Charts: KLD (mean and p99) and top-1 by loop step for each file, the exit-step
/// distribution of each file against the reference, a histogram of per-position final KLD, and the
/// worst positions with their text and both top-5 candidate lists.
public enum HTMLReport {
    static let palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]
    static let referenceColor = "#6b7280"

    public static func render(_ reports: [ValidationReport]) -> String {
        guard let first = reports.first else { return "" }
        var body: [String] = []
        body.append("<h1>Ouro validation report</h1>")
        body.append("<p class=\"sub\">reference <code>\(escape(first.bundleFile))</code> · \(first.promptCount) prompts · \(first.tokenCount) tokens · KL(reference ‖ model) in nats per position</p>")
        body.append(summaryTable(reports))
        body.append("<div class=\"grid\">")
        body.append(card("KLD by loop step", "mean (solid) and p99 (dashed), log scale", stepKLDChart(reports)))
        body.append(card("Top-1 agreement by loop step", "share of positions whose most likely token matches the reference", top1Chart(reports)))
        body.append(card("Exit-step distribution", "mean exit probability per loop step: reference (grey) and each file", exitChart(reports)))
        body.append(card("Per-position final KLD", "number of positions per half-decade bin", histogramChart(reports)))
        body.append("</div>")
        for (i, r) in reports.enumerated() { body.append(worstTable(r, color: color(i))) }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Ouro validation report</title>
            <style>\(css)</style></head>
            <body>
            \(body.joined(separator: "\n"))
            </body></html>

            """
    }

    static func color(_ i: Int) -> String { palette[i % palette.count] }

    // MARK: - pieces

    private static func summaryTable(_ reports: [ValidationReport]) -> String {
        var rows = ["<table class=\"summary\"><tr><th></th><th>file</th><th>type</th><th>bpw</th><th>size</th><th>KLD mean ± stderr</th><th>median</th><th>p99</th><th>p99.9</th><th>max</th><th>top-1 ± stderr</th><th>PPL ratio</th><th>verdict</th></tr>"]
        for (i, r) in reports.enumerated() {
            let f = r.final
            let verdict = r.pass ? "<span class=\"ok\">OK</span>" : "<span class=\"bad\" title=\"\(escape(r.reasons.first ?? ""))\">NOT OK</span>"
            rows.append("<tr><td><span class=\"dot\" style=\"background:\(color(i))\"></span></td><td><code>\(escape(r.modelFile))</code></td><td>\(escape(r.modelType))</td>"
                        + "<td>\(r.bitsPerWeight.map { String(format: "%.2f", $0) } ?? "–")</td><td>\(r.modelBytes.map(ReportText.byteText) ?? "–")</td>"
                        + "<td>\(sci(f.kldMean))\(f.kldMeanStderr.map { " ± " + sci($0) } ?? "")</td><td>\(f.kldMedian.map(sci) ?? "–")</td>"
                        + "<td>\(sci(f.kldP99))</td><td>\(f.kldP999.map(sci) ?? "–")</td><td>\(sci(f.kldMax))</td>"
                        + "<td>\(percent(f.top1Agreement))\(f.top1AgreementStderr.map { " ± " + percent($0) } ?? "")</td>"
                        + "<td>\(r.perplexity.map { String(format: "%.4f", $0.ratio) } ?? "–")</td><td>\(verdict)</td></tr>")
        }
        rows.append("</table>")
        if reports.contains(where: { !$0.pass }) {
            rows.append("<ul class=\"reasons\">" + reports.filter { !$0.pass }.map { "<li>\(escape(ReportText.verdictLine($0)))</li>" }.joined() + "</ul>")
        }
        return rows.joined(separator: "\n")
    }

    private static func card(_ title: String, _ note: String, _ svg: String) -> String {
        "<section class=\"card\"><h2>\(title)</h2><p class=\"note\">\(note)</p>\(svg)</section>"
    }

    // MARK: - charts

    private static let width = 520.0, height = 260.0
    private static let left = 64.0, right = 16.0, top = 14.0, bottom = 40.0

    private struct Plot {
        var lines: [String] = []
        mutating func add(_ s: String) { lines.append(s) }
        var svg: String {
            "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">"
                + lines.joined() + "</svg>"
        }
    }

    private static func x(_ i: Int, of n: Int) -> Double {
        let span = width - left - right
        return n <= 1 ? left + span / 2 : left + span * (Double(i) + 0.5) / Double(n)
    }

    /// Log10 y axis over [lo, hi] decades.
    private static func logAxis(_ plot: inout Plot, lo: Int, hi: Int) -> (Double) -> Double {
        let span = height - top - bottom
        let map: (Double) -> Double = { v in
            let l = log10(max(v, pow(10, Double(lo))))
            return top + span * (1 - (l - Double(lo)) / Double(hi - lo))
        }
        for d in lo...hi {
            let y = map(pow(10, Double(d)))
            plot.add("<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>")
            plot.add("<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" class=\"tick\" text-anchor=\"end\">1e\(d)</text>")
        }
        return map
    }

    private static func linearAxis(_ plot: inout Plot, lo: Double, hi: Double, ticks: Int, label: (Double) -> String) -> (Double) -> Double {
        let span = height - top - bottom
        let map: (Double) -> Double = { v in top + span * (1 - (v - lo) / (hi - lo)) }
        for k in 0...ticks {
            let v = lo + (hi - lo) * Double(k) / Double(ticks)
            let y = map(v)
            plot.add("<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>")
            plot.add("<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" class=\"tick\" text-anchor=\"end\">\(label(v))</text>")
        }
        return map
    }

    private static func stepLabels(_ plot: inout Plot, _ n: Int, caption: String) {
        for i in 0..<n {
            plot.add("<text x=\"\(f(x(i, of: n)))\" y=\"\(f(height - bottom + 16))\" class=\"tick\" text-anchor=\"middle\">\(i + 1)</text>")
        }
        plot.add("<text x=\"\(f(left + (width - left - right) / 2))\" y=\"\(f(height - 6))\" class=\"axis\" text-anchor=\"middle\">\(caption)</text>")
    }

    private static func polyline(_ points: [(Double, Double)], color: String, dashed: Bool) -> String {
        let coords = points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
        var s = "<polyline points=\"\(coords)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"5 4\"" : "")/>"
        for p in points { s += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"3\" fill=\"\(color)\"/>" }
        return s
    }

    private static func decadeRange(_ values: [Double]) -> (Int, Int) {
        let positive = values.filter { $0 > 0 && $0.isFinite }
        guard let mn = positive.min(), let mx = positive.max() else { return (-6, 0) }
        let lo = Int(floor(log10(mn))), hi = Int(ceil(log10(mx)))
        return (max(min(lo, hi - 1), -12), max(hi, lo + 1))
    }

    static func stepKLDChart(_ reports: [ValidationReport]) -> String {
        var plot = Plot()
        let n = reports.map(\.steps.count).max() ?? 0
        let values = reports.flatMap { $0.steps.flatMap { [$0.logits.kldMean, $0.logits.kldP99] } }
        let (lo, hi) = decadeRange(values)
        let y = logAxis(&plot, lo: lo, hi: hi)
        stepLabels(&plot, n, caption: "loop step")
        for (i, r) in reports.enumerated() {
            plot.add(polyline(r.steps.enumerated().map { (x($0.offset, of: n), y($0.element.logits.kldMean)) }, color: color(i), dashed: false))
            plot.add(polyline(r.steps.enumerated().map { (x($0.offset, of: n), y($0.element.logits.kldP99)) }, color: color(i), dashed: true))
        }
        return plot.svg
    }

    static func top1Chart(_ reports: [ValidationReport]) -> String {
        var plot = Plot()
        let n = reports.map(\.steps.count).max() ?? 0
        let lowest = reports.flatMap { $0.steps.map(\.logits.top1Agreement) }.filter(\.isFinite).min() ?? 0
        let lo = max(0, floor(lowest * 10 - 0.5) / 10)
        let y = linearAxis(&plot, lo: lo, hi: 1, ticks: 4) { percent($0) }
        stepLabels(&plot, n, caption: "loop step")
        for (i, r) in reports.enumerated() {
            plot.add(polyline(r.steps.enumerated().map { (x($0.offset, of: n), y($0.element.logits.top1Agreement)) }, color: color(i), dashed: false))
        }
        return plot.svg
    }

    static func exitChart(_ reports: [ValidationReport]) -> String {
        var plot = Plot()
        let series = [(referenceColor, reports.first?.exitDistribution?.reference ?? [])]
            + reports.enumerated().map { (color($0.offset), $0.element.exitDistribution?.model ?? []) }
        let n = series.map(\.1.count).max() ?? 0
        let peak = max(series.flatMap(\.1).filter(\.isFinite).max() ?? 1, 1e-9)
        let hi = min(1, ceil(peak * 10) / 10)
        let y = linearAxis(&plot, lo: 0, hi: hi, ticks: 4) { percent($0) }
        stepLabels(&plot, n, caption: "exit at loop step")
        let group = (width - left - right) / Double(max(n, 1)) * 0.8
        let bar = group / Double(max(series.count, 1))
        for (k, (c, values)) in series.enumerated() {
            for (i, v) in values.enumerated() where v.isFinite {
                let x0 = x(i, of: n) - group / 2 + Double(k) * bar
                plot.add("<rect x=\"\(f(x0))\" y=\"\(f(y(v)))\" width=\"\(f(bar * 0.9))\" height=\"\(f(y(0) - y(v)))\" fill=\"\(c)\"><title>\(percent(v))</title></rect>")
            }
        }
        return plot.svg
    }

    static func histogramChart(_ reports: [ValidationReport]) -> String {
        var plot = Plot()
        let histograms = reports.map { $0.finalKLDHistogram }
        guard let bounds = histograms.compactMap({ $0?.lowerBounds }).first else { return plot.svg }
        // Trim empty bins at both ends (shared by all files).
        let total = bounds.indices.map { b in histograms.reduce(0) { $0 + ($1?.counts[b] ?? 0) } }
        let firstBin = total.firstIndex { $0 > 0 } ?? 0, lastBin = total.lastIndex { $0 > 0 } ?? bounds.count - 1
        let bins = Array(firstBin...lastBin)
        let peak = Double(histograms.compactMap { h in bins.map { h?.counts[$0] ?? 0 }.max() }.max() ?? 1)
        let y = linearAxis(&plot, lo: 0, hi: max(peak, 1), ticks: 4) { String(Int($0.rounded())) }
        let n = bins.count
        for (i, b) in bins.enumerated() where i % max(1, (n + 6) / 7) == 0 {
            let text = b == 0 ? "0" : String(format: "%.0e", bounds[b])
            plot.add("<text x=\"\(f(x(i, of: n)))\" y=\"\(f(height - bottom + 16))\" class=\"tick\" text-anchor=\"middle\">≥\(text)</text>")
        }
        plot.add("<text x=\"\(f(left + (width - left - right) / 2))\" y=\"\(f(height - 6))\" class=\"axis\" text-anchor=\"middle\">per-position KLD (nats)</text>")
        let group = (width - left - right) / Double(max(n, 1)) * 0.9
        let bar = group / Double(max(reports.count, 1))
        for (k, h) in histograms.enumerated() {
            guard let h else { continue }
            for (i, b) in bins.enumerated() where h.counts[b] > 0 {
                let v = Double(h.counts[b])
                let x0 = x(i, of: n) - group / 2 + Double(k) * bar
                plot.add("<rect x=\"\(f(x0))\" y=\"\(f(y(v)))\" width=\"\(f(max(bar * 0.9, 1)))\" height=\"\(f(y(0) - y(v)))\" fill=\"\(color(k))\"><title>\(h.counts[b])</title></rect>")
            }
        }
        return plot.svg
    }

    // MARK: - worst positions

    static func worstTable(_ r: ValidationReport, color: String) -> String {
        guard let worst = r.worstPositions, !worst.isEmpty else { return "" }
        var rows = ["<section class=\"card wide\"><h2><span class=\"dot\" style=\"background:\(color)\"></span>Worst positions: <code>\(escape(r.modelFile))</code></h2>",
                    "<p class=\"note\">largest final KLD; the context ends with the token whose successor is predicted (marked)</p>",
                    "<table class=\"worst\"><tr><th>prompt:pos</th><th>KLD</th><th>context</th><th>next</th><th>reference top-5</th><th>model top-5</th></tr>"]
        for w in worst {
            rows.append("<tr><td>p\(w.prompt):\(w.position)</td><td>\(sci(w.kld))</td><td class=\"ctx\">\(contextHTML(w))</td>"
                        + "<td>\(w.label.map { tokenHTML($0, text: w.labelText) } ?? "–")</td>"
                        + "<td>\(candidates(w.referenceTop, highlight: w.label))</td><td>\(candidates(w.modelTop, highlight: w.label))</td></tr>")
        }
        rows.append("</table></section>")
        return rows.joined(separator: "\n")
    }

    private static func contextHTML(_ w: WorstPosition) -> String {
        if let text = w.contextText {
            return "<span class=\"text\">\(escape(visible(text)))</span><span class=\"here\">⟂</span>"
        }
        return w.context.map(String.init).joined(separator: " ") + "<span class=\"here\">⟂</span>"
    }

    private static func candidates(_ list: [Candidate], highlight: Int?) -> String {
        list.map { c in
            let cls = c.id == highlight ? " class=\"hit\"" : ""
            return "<div\(cls)>\(tokenHTML(c.id, text: c.text)) <span class=\"p\">\(String(format: "%.3f", c.probability))</span></div>"
        }.joined()
    }

    private static func tokenHTML(_ id: Int, text: String?) -> String {
        // Ids the tokenizer cannot spell (outside its vocabulary) show as the bare id.
        guard let text, !text.isEmpty else { return "<code>\(id)</code>" }
        return "<code>\(escape(visible(text)))</code> <span class=\"id\">\(id)</span>"
    }

    /// Whitespace and control characters made visible so a token like "\n" is not blank.
    private static func visible(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "↵"
            case "\t": out += "→"
            case " ": out += "·"
            default: out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "�" : scalar)
            }
        }
        return out
    }

    // MARK: - text helpers

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    private static func sci(_ x: Double) -> String { ReportText.sci(x) }
    private static func f(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : "0" }

    static let css = """
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px 32px;color:#111827;background:#f9fafb}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:15px;margin:0 0 2px}
        .sub,.note{color:#6b7280;font-size:12px;margin:0 0 10px}
        code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
        table{border-collapse:collapse;font-size:12px;background:#fff}
        th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
        th{background:#f3f4f6;font-weight:600}
        .summary{margin:8px 0 16px;box-shadow:0 1px 2px #0001}
        .ok{color:#fff;background:#16a34a;padding:1px 6px;border-radius:4px;font-weight:600}
        .bad{color:#fff;background:#dc2626;padding:1px 6px;border-radius:4px;font-weight:600}
        .reasons{font-size:12px;color:#991b1b}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:16px;margin-bottom:16px}
        .card svg{width:100%;height:auto;max-width:620px}
        .card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
        .wide{margin-bottom:16px}
        .dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px}
        svg .grid{stroke:#e5e7eb;stroke-width:1}svg .tick{font-size:10px;fill:#6b7280}svg .axis{font-size:11px;fill:#374151}
        .ctx{max-width:420px;font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
        .here{color:#dc2626;font-weight:700}.p{color:#6b7280}.id{color:#9ca3af;font-size:10px}
        .hit{background:#dcfce7}
        """
}

