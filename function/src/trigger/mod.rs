//! Trigger decoders: audit EventList, CLS-shipped audit, Events, timer → Work.
