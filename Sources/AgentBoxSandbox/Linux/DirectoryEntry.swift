import Glibc

/// The name of a directory entry that `readdir` returned, read where it lies.
///
/// Never `entry.pointee.d_name` as a value: that copies the whole 256-byte array (and, unoptimised, the whole record)
/// from a record that is often 24 bytes long, so the copy reads past the record, and past the stream's buffer when the
/// record is its last. A unit pass on CI died of a SIGSEGV in such a 256-byte copy of a `/proc/<pid>/task` entry.
public func directoryEntryName(_ entry: UnsafePointer<dirent>) -> String {
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
}
