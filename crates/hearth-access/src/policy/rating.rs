//! Content ratings and the minimum viewer age Hearth maps each to.

use std::fmt;
use std::str::FromStr;

/// A content rating from the US film (MPA) or TV Parental Guidelines
/// systems, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentRating {
    /// MPA G: general audiences.
    G,
    /// MPA PG: parental guidance suggested.
    Pg,
    /// MPA PG-13: parents strongly cautioned, under 13.
    Pg13,
    /// MPA R: restricted, under 17 with a parent.
    R,
    /// MPA NC-17: no one 17 and under.
    Nc17,
    /// TV-Y: all children.
    TvY,
    /// TV-Y7: children 7 and older.
    TvY7,
    /// TV-G: general audience.
    TvG,
    /// TV-PG: parental guidance suggested.
    TvPg,
    /// TV-14: parents strongly cautioned, under 14.
    Tv14,
    /// TV-MA: mature audiences only.
    TvMa,
    /// No rating known.
    Unrated,
}

impl ContentRating {
    /// Returns the youngest age Hearth considers the rating suitable for.
    ///
    /// The MPA and TV systems publish no ages for PG and TV-PG; Hearth maps
    /// them to 10. Unrated items map to 18, so an age limit hides them
    /// unless a rule allows every age.
    pub fn min_age(self) -> u8 {
        match self {
            ContentRating::G | ContentRating::TvY | ContentRating::TvG => 0,
            ContentRating::TvY7 => 7,
            ContentRating::Pg | ContentRating::TvPg => 10,
            ContentRating::Pg13 => 13,
            ContentRating::Tv14 => 14,
            ContentRating::R | ContentRating::TvMa => 17,
            ContentRating::Nc17 | ContentRating::Unrated => 18,
        }
    }

    /// Returns the rating as printed, such as `PG-13` or `TV-MA`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentRating::G => "G",
            ContentRating::Pg => "PG",
            ContentRating::Pg13 => "PG-13",
            ContentRating::R => "R",
            ContentRating::Nc17 => "NC-17",
            ContentRating::TvY => "TV-Y",
            ContentRating::TvY7 => "TV-Y7",
            ContentRating::TvG => "TV-G",
            ContentRating::TvPg => "TV-PG",
            ContentRating::Tv14 => "TV-14",
            ContentRating::TvMa => "TV-MA",
            ContentRating::Unrated => "unrated",
        }
    }

    const ALL: [ContentRating; 12] = [
        ContentRating::G,
        ContentRating::Pg,
        ContentRating::Pg13,
        ContentRating::R,
        ContentRating::Nc17,
        ContentRating::TvY,
        ContentRating::TvY7,
        ContentRating::TvG,
        ContentRating::TvPg,
        ContentRating::Tv14,
        ContentRating::TvMa,
        ContentRating::Unrated,
    ];
}

impl fmt::Display for ContentRating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error from parsing a rating.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown content rating {found:?}: expected an MPA rating (G … NC-17) or a TV rating (TV-Y … TV-MA)"
)]
pub struct UnknownRating {
    /// The text parsed.
    pub found: String,
}

impl FromStr for ContentRating {
    type Err = UnknownRating;

    /// Parses a rating as printed, ignoring case and surrounding spaces.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        ContentRating::ALL
            .into_iter()
            .find(|rating| rating.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownRating {
                found: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_parse_as_printed() {
        for rating in ContentRating::ALL {
            assert_eq!(rating.as_str().parse::<ContentRating>(), Ok(rating));
        }
        assert_eq!(" pg-13 ".parse::<ContentRating>(), Ok(ContentRating::Pg13));
        assert!("PG13".parse::<ContentRating>().is_err());
    }

    #[test]
    fn ages_increase_with_restriction() {
        use ContentRating::*;
        let film = [G, Pg, Pg13, R, Nc17].map(ContentRating::min_age);
        let tv = [TvY, TvY7, TvPg, Tv14, TvMa].map(ContentRating::min_age);

        assert!(film.is_sorted(), "{film:?}");
        assert!(tv.is_sorted(), "{tv:?}");
        assert_eq!(Unrated.min_age(), 18);
    }
}
