// Keeps the Swift runtime out of the plain C helpers (see no_swift_runtime.c). Nothing to call.
#pragma once
