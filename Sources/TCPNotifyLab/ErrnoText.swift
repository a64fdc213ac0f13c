import Glibc

/// `strerror` text plus the number, e.g. "Device or resource busy (errno 16)".
package enum ErrnoText {
    package static func describe(_ code: Int32) -> String {
        let positive = code < 0 ? -code : code
        return "\(String(cString: strerror(positive))) (errno \(positive))"
    }
}
