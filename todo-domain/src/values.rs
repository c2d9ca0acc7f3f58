//! Validated values: title, description, tags, time zone, due date, and their error.

use std::fmt;

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc,
};
use serde::{Deserialize, Serialize};

/// Invalid input: names the field and the rule it broke.
///
/// Plain data, so callers match on `field`:
///
/// ```
/// use todo_domain::{Title, ValidationError};
/// let err = Title::parse("   ").unwrap_err();
/// assert!(matches!(err, ValidationError { field: "title", .. }));
/// assert_eq!(err.to_string(), "title: must not be empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The input field, as the API names it: `title`, `description`, `tags`, `time_zone`,
    /// `recurrence`, `lead_time`, `remind_at`.
    pub field: &'static str,
    /// The rule that was broken, lower case, no trailing period.
    pub message: String,
}

impl ValidationError {
    /// An error on `field` breaking the rule described by `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The most characters a [`Title`] may have.
pub const TITLE_MAX_CHARS: usize = 500;
/// The most characters a [`Description`] may have.
pub const DESCRIPTION_MAX_CHARS: usize = 10_000;
/// The most tags a task may have.
pub const TAGS_MAX: usize = 20;
/// The most characters one tag may have.
pub const TAG_MAX_CHARS: usize = 50;

/// A task title: trimmed, non-empty, at most [`TITLE_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Trims and validates a title.
    ///
    /// # Errors
    /// Field `title` when it is empty after trimming or longer than [`TITLE_MAX_CHARS`] characters.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        let n = t.chars().count();
        if n > TITLE_MAX_CHARS {
            return Err(ValidationError::new(
                "title",
                format!("must be at most {TITLE_MAX_CHARS} characters (got {n})"),
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Title {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Title::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A task description: trimmed, at most [`DESCRIPTION_MAX_CHARS`] characters.
///
/// An empty description after trimming is an error: callers map an empty input to `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Trims and validates a description.
    ///
    /// # Errors
    /// Field `description` when it is empty after trimming or longer than [`DESCRIPTION_MAX_CHARS`] characters.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(ValidationError::new(
                "description",
                "must not be empty (omit it instead)",
            ));
        }
        let n = t.chars().count();
        if n > DESCRIPTION_MAX_CHARS {
            return Err(ValidationError::new(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters (got {n})"),
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The description text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Description {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Description::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A task's tags: each trimmed and lower-cased, duplicates dropped (first occurrence kept), empty ones dropped;
/// at most [`TAGS_MAX`] tags of at most [`TAG_MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Normalises and validates tags.
    ///
    /// ```
    /// let tags = todo_domain::Tags::parse([" Home", "home", "ERRANDS", " "])?;
    /// assert_eq!(tags.as_slice(), ["home", "errands"]);
    /// # Ok::<(), todo_domain::ValidationError>(())
    /// ```
    ///
    /// # Errors
    /// Field `tags` when a tag is longer than [`TAG_MAX_CHARS`] characters or there are more than [`TAGS_MAX`].
    pub fn parse<I, S>(input: I) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for raw in input {
            let tag = raw.as_ref().trim().to_lowercase();
            if tag.is_empty() {
                continue;
            }
            let n = tag.chars().count();
            if n > TAG_MAX_CHARS {
                return Err(ValidationError::new(
                    "tags",
                    format!(
                        "each tag must be at most {TAG_MAX_CHARS} characters (`{tag}` has {n})"
                    ),
                ));
            }
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        if out.len() > TAGS_MAX {
            return Err(ValidationError::new(
                "tags",
                format!(
                    "at most {TAGS_MAX} distinct tags are allowed (got {})",
                    out.len()
                ),
            ));
        }
        Ok(Self(out))
    }

    /// No tags.
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    /// The tags, in input order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        Tags::parse(v).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone such as `Europe/Berlin`; [`Default`] is UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    /// Parses an IANA time zone name (case-insensitive; `UTC` and `Z` are UTC).
    ///
    /// # Errors
    /// Field `time_zone` when the name is not in the IANA database.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let t = input.trim();
        if t.eq_ignore_ascii_case("z") {
            return Ok(Self::utc());
        }
        if let Ok(tz) = t.parse::<chrono_tz::Tz>() {
            return Ok(Self(tz));
        }
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(t))
            .map(|tz| Self(*tz))
            .ok_or_else(|| {
                ValidationError::new("time_zone", format!("`{t}` is not an IANA time zone name"))
            })
    }

    /// UTC.
    pub fn utc() -> Self {
        Self(chrono_tz::Tz::UTC)
    }

    /// The IANA name, e.g. `Europe/Berlin` or `UTC`.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The `chrono-tz` zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    /// Whether this is UTC.
    pub fn is_utc(&self) -> bool {
        self.0 == chrono_tz::Tz::UTC
    }

    /// The instant of a local date and time in this zone, following RFC 5545 §3.3.5: a time in a DST gap is read
    /// with the offset before the gap (so it moves forward by the gap's length, 02:30 becomes 03:30), and a time in
    /// a DST overlap takes the earlier of its two instants.
    pub fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
            LocalResult::None => {
                // The offset in force just before the gap: step back until the local time exists.
                for hours in 1..=48 {
                    let earlier = local - Duration::hours(hours);
                    if let LocalResult::Single(t) = self.0.from_local_datetime(&earlier) {
                        let offset = chrono::Offset::fix(t.offset());
                        return (local - offset).and_utc();
                    }
                }
                // No zone in the database has a gap longer than a day; read the time as UTC if one ever does.
                local.and_utc()
            }
        }
    }

    /// The local date of an instant in this zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TimeZone {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeZone::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// When a task is due: a local date, an optional local time of day, and the zone both live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Due {
    /// Local due date.
    pub date: NaiveDate,
    /// Local time of day; `None` means the start of the day.
    #[serde(default)]
    pub time: Option<NaiveTime>,
    /// The zone of `date` and `time`.
    #[serde(default)]
    pub zone: TimeZone,
}

impl Due {
    /// A due date without time, in UTC.
    pub fn on(date: NaiveDate) -> Self {
        Self {
            date,
            time: None,
            zone: TimeZone::utc(),
        }
    }

    /// The local date and time (00:00 when no time is set).
    pub fn local(&self) -> NaiveDateTime {
        self.date.and_time(self.time.unwrap_or(NaiveTime::MIN))
    }

    /// The instant the task is due: the local time (or 00:00) in its zone. A time in a DST gap moves forward by the
    /// gap's length; a time in an overlap takes the earlier instant (see [`TimeZone::instant`]).
    ///
    /// ```
    /// use chrono::{NaiveDate, NaiveTime, TimeZone as _, Utc};
    /// use todo_domain::{Due, TimeZone};
    /// let due = Due {
    ///     date: NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
    ///     time: NaiveTime::from_hms_opt(2, 30, 0),
    ///     zone: TimeZone::parse("Europe/Berlin")?,
    /// };
    /// // 02:30 does not exist that night in Berlin: it is read as 03:30 CEST.
    /// assert_eq!(due.instant(), Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap());
    /// # Ok::<(), todo_domain::ValidationError>(())
    /// ```
    pub fn instant(&self) -> DateTime<Utc> {
        self.zone.instant(self.local())
    }

    /// The same time of day and zone on another date.
    pub fn with_date(&self, date: NaiveDate) -> Self {
        Self { date, ..*self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn title_is_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Buy milk ").unwrap().as_str(), "Buy milk");
        assert_eq!(
            Title::parse(&"é".repeat(500))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            500
        );
        let err = Title::parse(&"x".repeat(501)).unwrap_err();
        assert_eq!(err.field, "title");
        assert!(err.message.contains("at most 500"), "{err}");
        assert!(matches!(
            Title::parse("\n\t"),
            Err(ValidationError { field: "title", .. })
        ));
    }

    #[test]
    fn description_is_trimmed_and_bounded() {
        assert_eq!(Description::parse(" a b ").unwrap().as_str(), "a b");
        assert_eq!(Description::parse(" ").unwrap_err().field, "description");
        assert!(Description::parse(&"x".repeat(10_000)).is_ok());
        assert_eq!(
            Description::parse(&"x".repeat(10_001)).unwrap_err().field,
            "description"
        );
    }

    #[test]
    fn tags_are_normalised() {
        let tags = Tags::parse(["  Work", "WORK", "home", ""]).unwrap();
        assert_eq!(tags.as_slice(), ["work", "home"]);
        assert!(Tags::empty().is_empty());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        let err = Tags::parse(&many).unwrap_err();
        assert_eq!(err.field, "tags");
        assert!(err.message.contains("at most 20"), "{err}");
        // duplicates do not count towards the limit
        let dup: Vec<String> = (0..40).map(|i| format!("t{}", i % 20)).collect();
        assert_eq!(Tags::parse(&dup).unwrap().as_slice().len(), 20);
        assert!(Tags::parse([&"x".repeat(50)]).is_ok());
        assert_eq!(Tags::parse([&"x".repeat(51)]).unwrap_err().field, "tags");
    }

    #[test]
    fn priority_parses_case_insensitively() {
        assert_eq!(
            "Urgent".parse::<crate::Priority>(),
            Ok(crate::Priority::Urgent)
        );
        assert!("soonish".parse::<crate::Priority>().is_err());
    }

    #[test]
    fn time_zone_parses_iana_names() {
        assert_eq!(
            TimeZone::parse("europe/berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert_eq!(TimeZone::default(), TimeZone::utc());
        assert_eq!(TimeZone::parse("Z").unwrap(), TimeZone::utc());
        let err = TimeZone::parse("Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "time_zone");
    }

    fn due(date: (i32, u32, u32), time: Option<(u32, u32)>, zone: &str) -> Due {
        Due {
            date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).unwrap(),
            time: time.map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0).unwrap()),
            zone: TimeZone::parse(zone).unwrap(),
        }
    }

    #[test]
    fn due_without_time_is_start_of_local_day() {
        let d = due((2026, 2, 10), None, "America/New_York");
        assert_eq!(
            d.instant(),
            Utc.with_ymd_and_hms(2026, 2, 10, 5, 0, 0).unwrap()
        );
        assert_eq!(
            Due::on(d.date).instant(),
            Utc.with_ymd_and_hms(2026, 2, 10, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn dst_gap_moves_forward_by_the_gap() {
        // New York springs forward at 02:00 on 2026-03-08.
        let d = due((2026, 3, 8), Some((2, 30)), "America/New_York");
        assert_eq!(
            d.instant(),
            Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0).unwrap()
        );
        let local = d.instant().with_timezone(&d.zone.tz()).naive_local();
        assert_eq!(local.time(), NaiveTime::from_hms_opt(3, 30, 0).unwrap());
    }

    #[test]
    fn dst_overlap_takes_the_earlier_instant() {
        // New York falls back at 02:00 on 2026-11-01: 01:30 happens twice, first at EDT (UTC-4).
        let d = due((2026, 11, 1), Some((1, 30)), "America/New_York");
        assert_eq!(
            d.instant(),
            Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap()
        );
    }

    #[test]
    fn midnight_gap_moves_forward() {
        // Santiago springs forward at 00:00 on 2026-09-06: the day starts at 01:00.
        let d = due((2026, 9, 6), None, "America/Santiago");
        let local = d.instant().with_timezone(&d.zone.tz()).naive_local();
        assert_eq!(
            local,
            NaiveDate::from_ymd_opt(2026, 9, 6)
                .unwrap()
                .and_hms_opt(1, 0, 0)
                .unwrap()
        );
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Asia/Kathmandu",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn due_instant_respects_dst_rules(
            days in 0i64..(366 * 30),
            minutes in 0u32..(24 * 60),
            zone in 0usize..ZONES.len(),
        ) {
            let date = NaiveDate::from_ymd_opt(2010, 1, 1).unwrap() + Duration::days(days);
            let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap();
            let zone = TimeZone::parse(ZONES[zone]).unwrap();
            let d = Due { date, time: Some(time), zone };
            let instant = d.instant();
            let local = instant.with_timezone(&zone.tz()).naive_local();
            match zone.tz().from_local_datetime(&d.local()) {
                LocalResult::Single(t) => prop_assert_eq!(instant, t.with_timezone(&Utc)),
                LocalResult::Ambiguous(a, b) => {
                    prop_assert_eq!(local, d.local());
                    prop_assert!(instant <= a.with_timezone(&Utc) && instant <= b.with_timezone(&Utc));
                }
                LocalResult::None => {
                    // moved forward, by at most the length of a gap, onto a time that exists
                    prop_assert!(local > d.local());
                    prop_assert!(local - d.local() <= Duration::hours(2));
                    prop_assert!(matches!(zone.tz().from_local_datetime(&local), LocalResult::Single(_)));
                }
            }
        }
    }
}
