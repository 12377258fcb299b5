// ReferenceBundle from a file (plain safetensors or zstd), then every prompt loaded.
import OuroIO
import SafeTensors
import OuroValidation

func fuzzOne(_ bytes: [UInt8]) {
    let path = scratchFile(bytes, suffix: ".ref.safetensors")
    do {
        // A small cap: zstd bombs must be stopped by the limit, not by the fuzzer's memory limit.
        let bundle = try ReferenceBundle(path: path, decompressedLimit: 16 << 20)
        for layout in bundle.prompts {
            let prompt = try bundle.load(layout)
            guard prompt.inputIDs.count == layout.tokens else { reject("input_ids length") }
            guard prompt.stepLogits.count == bundle.steps * layout.tokens * bundle.vocab else { reject("step_logits size") }
        }
    } catch let error as ValidationFailure {
        checkRejection(error, naming: path)
    } catch let error as SafeTensorsError {
        checkRejection(error, naming: path)
    } catch let error as FileIOError {
        checkRejection(error, naming: path)
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
}
