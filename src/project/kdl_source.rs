//! Reads `servin.kdl` into the document tree, keeping spans.
