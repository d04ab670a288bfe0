//! What a `Search` asks for: the words of its query, split and checked the same way by the server, which
//! refuses a query with these words, and by clients, which can say so before sending.

/// Most words in one query: each is one more condition every hit must meet.
pub const MAX_SEARCH_WORDS: usize = 8;

/// Longest query, in bytes of UTF-8.
pub const MAX_SEARCH_BYTES: usize = 256;

/// Most hits in one `Found`.
pub const MAX_SEARCH_PAGE: u32 = 50;

/// Longest `before`/`next` position: an opaque string the server makes.
pub const MAX_SEARCH_POSITION_BYTES: usize = 64;

/// Why a query cannot be searched for, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchQueryError {
    #[error("search for at least one word")]
    NoWords,
    #[error("search for at most {MAX_SEARCH_WORDS} words")]
    TooManyWords,
    #[error("a search is at most {MAX_SEARCH_BYTES} bytes long")]
    TooLong,
}

/// The words of `query`, lower-cased, each once, in the order typed: a word is a run of letters and digits, and
/// everything else separates words (so `lunch?` and `LUNCH` are the word `lunch`, and `e-mail` is two). A message
/// is found when its text has every word, each as the start of one of its words.
pub fn search_words(query: &str) -> Result<Vec<String>, SearchQueryError> {
    if query.len() > MAX_SEARCH_BYTES {
        return Err(SearchQueryError::TooLong);
    }
    let mut words: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    match words.len() {
        0 => Err(SearchQueryError::NoWords),
        n if n > MAX_SEARCH_WORDS => Err(SearchQueryError::TooManyWords),
        _ => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased_each_once() {
        assert_eq!(search_words("Lunch? lunch, FRIDAY-2pm").expect("words"), ["lunch", "friday", "2pm"]);
        assert_eq!(search_words("  Ünïcode  Straße ").expect("words"), ["ünïcode", "straße"]);
        assert_eq!(search_words("日本語 テスト").expect("words"), ["日本語", "テスト"]);
    }

    #[test]
    fn a_query_without_words_too_many_or_too_long_is_refused_with_a_reason() {
        assert_eq!(search_words(""), Err(SearchQueryError::NoWords));
        assert_eq!(search_words(" *?! -- \" "), Err(SearchQueryError::NoWords));
        assert_eq!(search_words("a b c d e f g h").map(|w| w.len()), Ok(8));
        assert_eq!(search_words("a b c d e f g h i"), Err(SearchQueryError::TooManyWords));
        assert_eq!(search_words("a a a a a a a a a").map(|w| w.len()), Ok(1), "repeats count once");
        assert_eq!(search_words(&"x".repeat(257)), Err(SearchQueryError::TooLong));
        assert_eq!(SearchQueryError::TooManyWords.to_string(), "search for at most 8 words");
    }
}
