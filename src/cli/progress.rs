//! Progress bars for the long commands (`export`, `import`), on stderr and only when it is a
//! terminal: in a pipe, a log or CI they draw nothing.

use indicatif::{ProgressBar, ProgressStyle};

/// Whether a bar would be drawn: stderr is a terminal.
pub fn visible() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// A bar of `length` steps (a spinner when the length is unknown) drawn with `template`
/// (indicatif's: `{bar}`, `{pos}`, `{len}`, `{bytes}`, `{msg}`, ...).
pub fn bar(length: Option<u64>, template: &str) -> ProgressBar {
    // Drawn on stderr, and hidden when stderr is not a terminal (indicatif's default target).
    let bar = match length {
        Some(length) => ProgressBar::new(length),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests do not run on a terminal: the bar draws nothing there, and the templates parse.
    #[test]
    fn bars_are_quiet_off_a_terminal() {
        let bar = bar(Some(10), "{spinner} [{bar:30}] {pos}/{len} {bytes} {msg}");
        assert_eq!(bar.is_hidden(), !visible());
    }
}
