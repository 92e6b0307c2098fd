// The C helpers (the sandbox init, agentbox-tool) are plain C, but SwiftPM links every executable through swiftc, which adds `swiftrt.o`: its
// constructor registers the image with the Swift runtime, and so the static link pulls in all of libswiftCore
// (the init's resident memory doubled, to 1.6 MB per workspace). This program has no Swift code, so the two
// runtime entry points that swiftrt.o calls are defined here as no-ops and the runtime stays out of the binary.

void swift_addNewDSOImage(const void *header) { (void)header; }

int _swift_backtrace_isThunkFunction(const char *name) {
    (void)name;
    return 0;
}
