//! Progress over the stages of a long command (training, the nightly job): a bar on a
//! terminal, nothing when quiet or when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress over `stages` steps, titled `title`.
pub fn stage_bar(title: &str, stages: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar =
        ProgressBar::with_draw_target(Some(stages as u64), ProgressDrawTarget::stderr_with_hz(4));
    // The template is a constant of ours: a failure would be a bug, shown as a plain bar.
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{title} {{bar:30}} {{pos}}/{{len}} {{msg}} ({{elapsed}})"
    )) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}
