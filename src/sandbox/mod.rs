//! GHL sandbox server.
