//! Time: the zone `PP_TIMEZONE` names (for message times and the schedule) and the cron
//! schedule `listen` keeps (`PP_SCHEDULE`). Zones and local-time arithmetic come from `jiff`,
//! cron fields and the calendar walk from `croner`.

pub mod schedule;
pub mod window;
pub mod zone;

pub use schedule::Schedule;
pub use window::Windows;
