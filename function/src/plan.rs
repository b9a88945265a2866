//! The pure planner: Desired × CloudView → an ordered, batched Plan. No I/O, no clock.
