//! How fast each block learns and how far its weights have grown: the second half of the causal
//! chain behind a deep plain net's failure. Per block, the update ratio ‖ΔW‖/‖W‖ of its
//! convolution weights (under batch norm a conv's output does not depend on its weights' scale,
//! so this ratio, not the learning rate, is how fast the block's function changes: it falls as
//! 1/‖W‖² when ‖W‖ grows) and the growth ‖W_t‖/‖W_0‖. Summaries by third of depth and a
//! "why" line built only from those measured numbers. Pure functions over plain data.

use super::record::{BlockStat, RunHistory, RunInfo, StepRecord};
use crate::model::ModelSpec;
use crate::numfmt;

/// The why line calls the input blocks frozen when they learn less than this fraction of the
/// output blocks' rate (input-third ÷ output-third update ratio).
pub const FROZEN_BELOW: f64 = 0.2;
/// … and calls the update ratio even across depth within this factor either way.
pub const EVEN_WITHIN: f64 = 3.0;
/// … and says the input blocks' weights have grown when ‖W_t‖/‖W_0‖ is above this.
pub const GROWN_ABOVE: f64 = 3.0;
/// Records the dashboard averages a block's update ratio over (the most recent ones).
pub const RECENT: usize = 10;

/// Per block boundary (in `block_names` order), the indices of the parameters its update ratio
/// and weight norm are over: the convolution weights of the block that produces it, without a
/// projection shortcut's (`stem` → `stem.conv.weight`; `stages.0.1` → its `conv1.weight`,
/// `conv2.weight`, …).
pub fn conv_weights(block_names: &[String], param_names: &[String]) -> Vec<Vec<usize>> {
    block_names
        .iter()
        .map(|block| {
            let prefix = format!("{block}.");
            param_names
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    let Some(rest) = p.strip_prefix(&prefix) else {
                        return false;
                    };
                    let parts: Vec<&str> = rest.split('.').collect();
                    parts.len() >= 2
                        && parts[parts.len() - 1] == "weight"
                        && parts[parts.len() - 2].starts_with("conv")
                        && !parts.contains(&"shortcut")
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// ‖W‖ of a group of tensors given each one's norm: √Σ‖W_i‖².
pub fn group_norm(group: &[usize], norms: &[f32]) -> Option<f64> {
    let sq: Option<f64> = group
        .iter()
        .map(|&i| norms.get(i).map(|&n| (n as f64).powi(2)))
        .sum();
    sq.filter(|s| !group.is_empty() && *s > 0.0).map(f64::sqrt)
}

/// ‖ΔW‖/‖W‖ of a group of tensors as one, from each one's ratio and norm:
/// √(Σ (r_i·‖W_i‖)² / Σ ‖W_i‖²).
pub fn group_ratio(group: &[usize], ratios: &[f32], norms: &[f32]) -> Option<f64> {
    let w = group_norm(group, norms)?;
    let dw: Option<f64> = group
        .iter()
        .map(|&i| Some((*ratios.get(i)? as f64 * norms[i] as f64).powi(2)))
        .sum();
    dw.map(|d| d.sqrt() / w)
}

/// Each block's update ratio and weight norm for one step, from the per-parameter figures
/// (`groups` from [`conv_weights`]); zeros where unknown.
pub fn block_learning(groups: &[Vec<usize>], ratios: &[f32], norms: &[f32]) -> Vec<(f32, f32)> {
    groups
        .iter()
        .map(|g| {
            let r = group_ratio(g, ratios, norms).unwrap_or(0.0);
            (r as f32, group_norm(g, norms).unwrap_or(0.0) as f32)
        })
        .collect()
}

/// Which third of depth (0 input, 1 middle, 2 output) block `j` of `n` falls in.
pub fn third(j: usize, n: usize) -> usize {
    (3 * j / n.max(1)).min(2)
}

/// Medians of per-block values over the input, middle and output third of the blocks (the stem
/// left out: `values[0]` is the stem's boundary). `None` below three blocks or when a third has
/// no finite positive value.
pub fn by_third(values: &[Option<f64>]) -> Option<[f64; 3]> {
    let blocks = values.get(1..)?;
    if blocks.len() < 3 {
        return None;
    }
    let mut thirds: [Vec<f64>; 3] = Default::default();
    for (j, v) in blocks.iter().enumerate() {
        if let Some(v) = v.filter(|v| v.is_finite() && *v > 0.0) {
            thirds[third(j, blocks.len())].push(v);
        }
    }
    let m = thirds.map(|t| median(t));
    Some([m[0]?, m[1]?, m[2]?])
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Per block boundary, the mean update ratio over `steps` (records without one left out).
pub fn mean_update_ratios<'a>(steps: impl IntoIterator<Item = &'a StepRecord>) -> Vec<Option<f64>> {
    let mut sums: Vec<(f64, usize)> = Vec::new();
    for s in steps {
        sums.resize(sums.len().max(s.blocks.len()), (0.0, 0));
        for (acc, b) in sums.iter_mut().zip(&s.blocks) {
            if b.update_ratio > 0.0 && b.update_ratio.is_finite() {
                *acc = (acc.0 + b.update_ratio as f64, acc.1 + 1);
            }
        }
    }
    sums.into_iter()
        .map(|(s, n)| (n > 0).then(|| s / n as f64))
        .collect()
}

/// Per block boundary, the update ratio averaged over the last [`RECENT`] records.
pub fn recent_update_ratios(steps: &[StepRecord]) -> Vec<Option<f64>> {
    mean_update_ratios(&steps[steps.len().saturating_sub(RECENT)..])
}

/// Per block boundary, ‖W‖ at initialisation (`None` where the run's info lacks it).
pub fn init_norms(info: &RunInfo) -> Vec<Option<f64>> {
    let groups = conv_weights(&info.block_names, &info.param_names);
    groups
        .iter()
        .map(|g| group_norm(g, &info.init_weight_norms))
        .collect()
}

/// Per block boundary, ‖W‖ in `blocks` over ‖W‖ at initialisation.
pub fn growth(blocks: &[BlockStat], init: &[Option<f64>]) -> Vec<Option<f64>> {
    blocks
        .iter()
        .zip(init)
        .map(|(b, w0)| {
            let w0 = (*w0)?;
            (b.weight_norm > 0.0).then(|| b.weight_norm as f64 / w0)
        })
        .collect()
}

/// `[input, middle, output]`: per block the mean update ratio over the last 10 % of the run's
/// steps (the window of [`RunHistory::final_mean`]), the median over each third of depth.
pub fn update_ratio_by_third(h: &RunHistory) -> Option<[f64; 3]> {
    by_third(&mean_update_ratios(h.final_steps()?))
}

/// `[input, middle, output]`: per block ‖W_final‖/‖W_0‖, the median over each third of depth.
pub fn weight_growth_by_third(h: &RunHistory) -> Option<[f64; 3]> {
    by_third(&growth(&h.last()?.blocks, &init_norms(&h.info)))
}

/// One line on why a run learns as it does, from its measured figures only: the input third's
/// update ratio against the output third's (now: the last [`RECENT`] records) and the input
/// blocks' weight growth since initialisation. `None` until both ratios are known.
pub fn why(h: &RunHistory) -> Option<String> {
    why_at(&h.info, &h.steps)
}

/// [`why`] as of the last of `steps` (a replay's cursor).
pub fn why_at(info: &RunInfo, steps: &[StepRecord]) -> Option<String> {
    let [r_in, _, r_out] = by_third(&recent_update_ratios(steps))?;
    let r = r_in / r_out;
    let grown = steps
        .last()
        .and_then(|l| by_third(&growth(&l.blocks, &init_norms(info))))
        .map(|g| g[0]);
    // A stream's spec (a PyTorch model's name) does not parse: nothing is claimed about its
    // batch norms.
    let bn = info
        .spec
        .parse::<ModelSpec>()
        .is_ok_and(|s| s.branch_convs_feed_batch_norm());
    Some(why_text(r, grown, bn))
}

/// The why line for input÷output update ratio `r` and input-third weight growth `g`; `bn` when
/// batch norm follows every block conv, so that growth divides the effective learning rate by
/// its square ([`ModelSpec::branch_convs_feed_batch_norm`]).
pub fn why_text(r: f64, g: Option<f64>, bn: bool) -> String {
    let pace = numfmt::ratio(r);
    match g.filter(|g| *g > GROWN_ABOVE) {
        // The chain's middle links, while they happen: the weights grew, batch norm slowed them,
        // and the pace says whether they have frozen yet.
        Some(g) => {
            // Short enough for one line of a 120-column screen with the run's name.
            let cause = if bn {
                format!(
                    "input weights grew {} (BN: effective lr ÷{})",
                    numfmt::ratio(g),
                    numfmt::num(g * g)
                )
            } else {
                format!("input weights grew {}", numfmt::ratio(g))
            };
            let now = if r < FROZEN_BELOW {
                format!("they learn {pace} as fast as the output blocks (frozen)")
            } else if r < 1.0 / EVEN_WITHIN {
                format!("they now learn {pace} as fast as the output blocks")
            } else {
                format!("they still learn {pace} as fast as the output blocks")
            };
            format!("{cause}; {now}")
        }
        None if r < FROZEN_BELOW => {
            format!("input blocks learn {pace} as fast as the output blocks (frozen)")
        }
        None if (1.0 / EVEN_WITHIN..=EVEN_WITHIN).contains(&r) => {
            let even = format!("update ratio even across depth (in÷out {pace})");
            match g {
                Some(g) => format!(
                    "{even}; input weights near their initial norm ({})",
                    numfmt::ratio(g)
                ),
                None => even,
            }
        }
        None => format!("input blocks learn {pace} as fast as the output blocks"),
    }
}

#[cfg(test)]
#[path = "learning_tests.rs"]
mod tests;
