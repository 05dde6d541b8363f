// markup.h -- text made safe inside XML and HTML (the loss curve's SVG, the attention page).
#ifndef GPT_MARKUP_H
#define GPT_MARKUP_H

#include "common/buf.h"

// Appends s as text content or an attribute value: the five special characters as entities,
// control characters (not allowed in XML 1.0) as spaces, and bytes that are not UTF-8 (and the
// noncharacters U+FFFE, U+FFFF) as U+FFFD, so the document stays well-formed whatever s holds.
void markup_escape(Buf *b, const char *s);

#endif
