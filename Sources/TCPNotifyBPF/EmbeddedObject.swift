/// Decodes the base64 text the BPFCompiler plugin embeds for each compiled `*.bpf.c`.
enum EmbeddedObject {
    static func decode(_ base64: StaticString) -> [UInt8] {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (index, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(index)
        }
        var output: [UInt8] = []
        base64.withUTF8Buffer { input in
            output.reserveCapacity(input.count / 4 * 3)
            var accumulator: UInt32 = 0
            var bits = 0
            for character in input {
                let value = table[Int(character)]
                if value == 0xff { continue } // '=' padding and anything else
                accumulator = accumulator << 6 | UInt32(value)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                }
            }
        }
        return output
    }
}
