import Foundation
import Glibc

/// The directories of a cgroup v2 hierarchy. A cgroup's id (what BPF's cgroup helpers and sock_diag
/// report) is its directory's inode number.
public enum CgroupTree {
    /// Directories beyond this are not walked (a bound on memory and walk time; hosts have thousands at most).
    public static let maximumDirectories = 200_000

    /// `root` and every directory below it: inode and path relative to `root` ("/" for root itself).
    /// Directories removed during the walk are skipped; at most `limit` are returned.
    public static func directories(under root: String, limit: Int = .max) -> [(id: UInt64, path: String)] {
        var found: [(id: UInt64, path: String)] = []
        var pending: [(absolute: String, relative: String)] = [(root, "/")]
        while let (directory, relative) = pending.popLast(), found.count < limit {
            var info = stat()
            guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            found.append((UInt64(info.st_ino), relative))
            guard let stream = opendir(directory) else { continue }
            defer { closedir(stream) }
            while let entry = readdir(stream) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                    String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                pending.append((directory + "/" + name, relative == "/" ? "/" + name : relative + "/" + name))
            }
        }
        return found
    }

    /// The cgroup ids of `root` and its descendants.
    public static func ids(under root: String) -> [UInt64] { directories(under: root).map(\.id) }
}
