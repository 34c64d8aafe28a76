/*
 * witch/witch.h: umbrella header of libwitch.  Include this one.
 */
#ifndef WITCH_WITCH_H
#define WITCH_WITCH_H

#include <witch/export.h>
#include <witch/version.h>
#include <witch/error.h>
#include <witch/server.h>
#include <witch/client.h>
#include <witch/discovery.h>
#include <witch/peer.h>

#endif /* WITCH_WITCH_H */
