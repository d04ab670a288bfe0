//! Tab completion of the word before the cursor, for every front end's entry line: a leading `/word` from the
//! commands, anything else from the nicknames (`nick: ` at the start of a line, `nick ` elsewhere); Tab again
//! cycles through the candidates. Pure: the text and the cursor go in and come out.

/// A completion in progress: the candidates and which one is shown, so that the next Tab shows the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where the completed word starts, in characters.
    start: usize,
    candidates: Vec<String>,
    index: usize,
    suffix: &'static str,
}

/// Completes the word that ends at `cursor` (an index in characters) in `text`, or with `previous` (the
/// completion of the last Tab, when nothing was typed since) puts its next candidate in its place. Returns
/// the completion to hand back on the next Tab; `None` when nothing matched (the text is left as it is).
pub fn complete(
    text: &mut Vec<char>,
    cursor: &mut usize,
    previous: Option<Completion>,
    commands: &[&str],
    nicks: &[String],
) -> Option<Completion> {
    if let Some(mut completion) = previous {
        completion.index = (completion.index + 1) % completion.candidates.len();
        replace_word(text, cursor, completion.start, &completion.candidates[completion.index], completion.suffix);
        return Some(completion);
    }
    let mut start = (*cursor).min(text.len());
    while start > 0 && !text[start - 1].is_whitespace() {
        start -= 1;
    }
    let prefix: String = text[start..*cursor].iter().collect::<String>().to_lowercase();
    let (candidates, suffix): (Vec<String>, &'static str) = if start == 0 && prefix.starts_with('/') {
        (commands.iter().filter(|c| c.starts_with(&prefix)).map(|c| (*c).to_owned()).collect(), " ")
    } else if prefix.is_empty() {
        return None;
    } else {
        let prefix = prefix.trim_start_matches('@');
        let suffix = if start == 0 { ": " } else { " " };
        (nicks.iter().filter(|n| n.starts_with(prefix)).cloned().collect(), suffix)
    };
    let first = candidates.first()?;
    replace_word(text, cursor, start, first, suffix);
    Some(Completion { start, candidates, index: 0, suffix })
}

fn replace_word(text: &mut Vec<char>, cursor: &mut usize, start: usize, word: &str, suffix: &str) {
    // Everything from the word's start to the cursor is the previous completion (or the typed prefix).
    text.drain(start..*cursor);
    let inserted: Vec<char> = word.chars().chain(suffix.chars()).collect();
    let len = inserted.len();
    text.splice(start..start, inserted);
    *cursor = start + len;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tab(line: &str, previous: Option<Completion>, nicks: &[String]) -> (String, Option<Completion>) {
        let mut text: Vec<char> = line.chars().collect();
        let mut cursor = text.len();
        let completion = complete(&mut text, &mut cursor, previous, &["/join", "/leave", "/msg"], nicks);
        assert_eq!(cursor, text.len());
        (text.into_iter().collect(), completion)
    }

    #[test]
    fn nicknames_and_commands_complete_and_cycle() {
        let nicks = vec!["carol".to_owned(), "carla".to_owned(), "bob".to_owned()];
        let (line, completion) = tab("ca", None, &nicks);
        assert_eq!(line, "carol: ");
        let mut text: Vec<char> = line.chars().collect();
        let mut cursor = text.len();
        complete(&mut text, &mut cursor, completion, &[], &nicks);
        assert_eq!(text.iter().collect::<String>(), "carla: ");
        assert_eq!(tab("hi @b", None, &nicks).0, "hi bob ");
        assert_eq!(tab("/j", None, &nicks).0, "/join ");
        assert_eq!(tab("hi zed", None, &nicks), ("hi zed".to_owned(), None), "nothing matched, nothing changed");
        assert_eq!(tab("", None, &nicks), (String::new(), None));
    }
}
