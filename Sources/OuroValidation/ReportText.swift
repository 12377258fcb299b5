import Foundation

/// The human-readable report. Loop steps are 1-based, as in the JSON.
/// The last line is always `OK: ...` or `NOT OK: ...`.
public enum ReportText {
    public static func render(_ r: ValidationReport) -> String {
        var lines: [String] = []
        lines.append("model:  \(r.modelFile) (\(r.modelType))")
        lines.append("bundle: \(r.bundleFile) (\(r.promptCount) prompts, \(r.tokenCount) tokens\(r.bundleDeclaresFormat ? "" : ", no ouro-reference metadata: read as version 1"))")
        lines.append("criteria: \(r.criteria.summary)")
        lines.append("")
        lines.append("by loop step (1-based; step \(r.steps.count) is the last):")
        var table = [["step", "max|Δlogit|", "rel RMS", "KLD mean", "KLD p99", "top-1", "max|Δhidden|", "max|Δpdf|"]]
        for s in r.steps {
            table.append(["\(s.step)", sci(s.logits.maxAbsLogitError), sci(s.logits.relativeRMSError),
                          sci(s.logits.kldMean), sci(s.logits.kldP99), percent(s.logits.top1Agreement),
                          s.hiddenMaxAbsError.map(sci) ?? "-", sci(s.exitPDFMaxAbsError)])
        }
        lines += aligned(table)
        if let growth = r.kldGrowth {
            lines.append(String(format: "KLD growth from loop step 1 to %d: %.2fx", r.steps.count, growth))
        }
        lines.append("")
        var modes = [["exit mode", "max|Δlogit|", "rel RMS", "KLD mean", "KLD p99", "KLD max", "top-1"]]
        func row(_ name: String, _ e: LogitErrors) -> [String] {
            [name, sci(e.maxAbsLogitError), sci(e.relativeRMSError), sci(e.kldMean), sci(e.kldP99), sci(e.kldMax),
             percent(e.top1Agreement)]
        }
        modes.append(row("final", r.final))
        if let w = r.exit.weighted { modes.append(row("weighted", w)) }
        for key in r.thresholds { if let e = r.exit.thresholdLogits[key] { modes.append(row("threshold \(key)", e)) } }
        for e in r.exit.exitAtStep { modes.append(row("exit at step \(e.step)", e.logits)) }
        lines += aligned(modes)
        lines.append("")
        lines.append(distributionLine(r.final))
        lines.append("exit pdf: max|Δ| \(sci(r.exit.pdfMaxAbsError))")
        if !r.thresholds.isEmpty {
            let parts = r.thresholds.map { "\($0): \(percent(r.exit.thresholdStepAgreement[$0] ?? 0))" }
            lines.append("threshold exit steps equal: " + parts.joined(separator: ", "))
        }
        let g = r.greedy
        if g.tokensTotal > 0 {
            // Tokens after a prompt's first difference are not comparable, so only the agreeing prefix counts.
            lines.append("greedy tokens: \(g.match ? "equal" : "DIFFERENT"): \(g.cached.matched) of \(g.cached.total) agree "
                         + "before each prompt's first difference (cached reference), "
                         + "\(g.uncached.matched) of \(g.uncached.total) (uncached reference)")
        } else {
            lines.append("greedy: no reference tokens in the bundle")
        }
        if let p = r.perplexity {
            lines.append(String(format: "perplexity on %d labels: reference %.4f, model %.4f, ratio %.5f",
                                p.tokens, p.reference, p.model, p.ratio))
        }
        if let d = r.decodePath {
            lines.append("")
            lines.append("decode path (\(d.prefillTokens)-token prefill, then one token at a time; KV cache \(d.kvCache)):")
            var table = [["step", "max|Δlogit|", "rel RMS", "KLD mean", "KLD p99", "KLD max", "top-1"]]
            for s in d.steps {
                table.append(["\(s.step)", sci(s.logits.maxAbsLogitError), sci(s.logits.relativeRMSError), sci(s.logits.kldMean),
                              sci(s.logits.kldP99), sci(s.logits.kldMax), percent(s.logits.top1Agreement)])
            }
            let f = d.final
            table.append(["final", sci(f.maxAbsLogitError), sci(f.relativeRMSError), sci(f.kldMean), sci(f.kldP99),
                          sci(f.kldMax), percent(f.top1Agreement)])
            lines += aligned(table)
            if let e = d.earlyExit {
                lines.append(String(format: "early exit at threshold %g: %.3f loop steps per position (max %d of %d) over %d one-at-a-time positions",
                                    e.threshold, e.meanLoopSteps, e.maxLoopSteps, e.loopCount, e.positions))
                var exitTable = [["vs", "max|Δlogit|", "KLD mean", "KLD p99", "KLD max", "top-1"]]
                for (name, x) in [("full depth", e.vsFullDepth), ("threshold at full depth", e.vsThresholdFullDepth)] {
                    exitTable.append([name, sci(x.maxAbsLogitError), sci(x.kldMean), sci(x.kldP99), sci(x.kldMax),
                                      percent(x.top1Agreement)])
                }
                lines += aligned(exitTable)
            }
        }
        for reason in r.reasons { lines.append("FAIL: \(reason)") }
        lines.append(verdictLine(r))
        return lines.joined(separator: "\n") + "\n"
    }

    /// Final KLD and top-1 as llama-perplexity prints them.
    static func distributionLine(_ e: LogitErrors) -> String {
        var parts = ["final KLD: mean \(sci(e.kldMean))" + (e.kldMeanStderr.map { " ± \(sci($0))" } ?? "")]
        for (name, value) in [("median", e.kldMedian), ("p90", e.kldP90), ("p95", e.kldP95), ("p99", e.kldP99),
                              ("p99.9", e.kldP999), ("max", e.kldMax)] {
            if let value { parts.append("\(name) \(sci(value))") }
        }
        let top1 = "top-1 \(percent(e.top1Agreement))" + (e.top1AgreementStderr.map { " ± \(percent($0))" } ?? "")
        return parts.joined(separator: ", ") + "; " + top1 + " over \(e.positions) positions"
    }

    /// Several files against one reference: one row per file, then each file's verdict line.
    public static func comparison(_ reports: [ValidationReport]) -> String {
        guard let first = reports.first else { return "" }
        var lines = ["reference: \(first.bundleFile) (\(first.promptCount) prompts, \(first.tokenCount) tokens)", ""]
        var table = [["file", "type", "bpw", "size", "KLD mean ± stderr", "KLD p99", "KLD by step",
                      "top-1 ± stderr", "PPL ratio", "verdict"]]
        for r in reports {
            let f = r.final
            table.append([
                r.modelFile, r.modelType, r.bitsPerWeight.map { String(format: "%.2f", $0) } ?? "-",
                r.modelBytes.map(byteText) ?? "-",
                sci(f.kldMean) + (f.kldMeanStderr.map { " ± " + sci($0) } ?? ""), sci(f.kldP99),
                r.steps.map { sci($0.logits.kldMean) }.joined(separator: " "),
                percent(f.top1Agreement) + (f.top1AgreementStderr.map { " ± " + percent($0) } ?? ""),
                r.perplexity.map { String(format: "%.4f", $0.ratio) } ?? "-",
                r.pass ? "OK" : "NOT OK"])
        }
        lines += aligned(table)
        lines.append("")
        lines += reports.map(verdictLine)
        return lines.joined(separator: "\n") + "\n"
    }

    static func byteText(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// `OK: <file> matches the reference (<criteria>)` or
    /// `NOT OK: <file>: <first failing criterion>, first diverging at loop step k`.
    public static func verdictLine(_ r: ValidationReport) -> String {
        if r.pass { return "OK: \(r.modelFile) matches the reference (\(r.criteria.summary))" }
        let first = r.reasons.first ?? "failed"
        // Strip the per-reason step note; the verdict names the first diverging step once.
        let head = first.components(separatedBy: ", first over the limit").first ?? first
        let step = r.firstDivergingStep.map { ", first diverging at loop step \($0)" } ?? ""
        return "NOT OK: \(r.modelFile): \(head)\(step)"
    }

    static func sci(_ x: Double) -> String {
        if !x.isFinite { return x.isNaN ? "nan" : "inf" }
        return x == 0 ? "0" : String(format: "%.2e", x)
    }

    private static func aligned(_ rows: [[String]]) -> [String] {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }
}
