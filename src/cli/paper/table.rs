//! A paper's report as the text table `resviz paper` prints without `--json`.

use super::PaperReport;
use crate::numfmt;

/// The claim and setting, then one line per row: quantity, model, the paper's number, the
/// number measured here, and whether the claim holds (`yes`, `NO`, or `-` for a figure the
/// claims rest on).
pub fn render(r: &PaperReport) -> String {
    let cells: Vec<[String; 5]> = r
        .rows
        .iter()
        .map(|row| {
            [
                row.quantity.clone(),
                row.model.clone(),
                row.paper.map_or("-".into(), numfmt::plain),
                row.measured.map_or("n/a".into(), numfmt::plain),
                match row.holds {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let head = ["quantity", "model", "paper", "here", "holds"];
    let width = |k: usize| {
        cells
            .iter()
            .map(|c| c[k].chars().count())
            .chain([head[k].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..5).map(width).collect();
    let line = |c: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
        .trim_end()
        .to_string()
            + "\n"
    };
    let mut out = format!("{}: {}\n{}\n\n", r.paper, r.claim, r.setting);
    out += &line(head);
    for c in &cells {
        out += &line([&c[0], &c[1], &c[2], &c[3], &c[4]]);
    }
    let (held, claims) = (
        r.rows.iter().filter(|x| x.holds == Some(true)).count(),
        r.rows.iter().filter(|x| x.holds.is_some()).count(),
    );
    out += &format!("\n{held} of {claims} claims hold here.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::Row;
    use super::*;

    #[test]
    fn a_claim_that_fails_reads_no_and_is_counted() {
        let r = PaperReport {
            paper: "he2015-fig1",
            claim: "deeper plain nets train worse".into(),
            setting: "synthetic".into(),
            rows: vec![
                Row::new("final training loss", "plain-14").measured(Some(0.25)),
                Row::new("seeds where it holds", "all")
                    .measured(Some(3.0))
                    .holds(false),
                Row::new("seeds where both start", "plain")
                    .measured(Some(5.0))
                    .holds(true),
                Row::new("start step", "plain-32").measured(None),
            ],
        };
        let t = render(&r);
        assert!(
            t.starts_with("he2015-fig1: deeper plain nets train worse\nsynthetic\n"),
            "{t}"
        );
        let no = t
            .lines()
            .find(|l| l.starts_with("seeds where it holds"))
            .unwrap();
        assert!(no.ends_with("NO") && no.contains(" 3.00 "), "{no}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("start step") && l.contains("n/a")),
            "{t}"
        );
        assert!(t.ends_with("1 of 2 claims hold here.\n"), "{t}");
    }
}
