//! In-memory CLB 2018-03-17 and Tag 2018-08-13 API emulator.
