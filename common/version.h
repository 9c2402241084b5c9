/*
 * version: the release this binary was built from. The Makefile's VERSION is the one source:
 * it passes -DSTREAMIO_VERSION, so a build that bypasses the Makefile fails here instead of
 * shipping a made-up number.
 */
#ifndef STREAMIO_COMMON_VERSION_H
#define STREAMIO_COMMON_VERSION_H

#ifndef STREAMIO_VERSION
#error "STREAMIO_VERSION is not defined: build with the Makefile (VERSION := ...)"
#endif

#endif
