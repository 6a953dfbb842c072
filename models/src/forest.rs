//! The random forest candidate: bagged linfa decision trees, kept in the artifact as plain
//! split tables so that it can score, explain and be audited like the other candidates.
//!
//! - **Growing**: each of `trees` linfa decision trees grows on a bootstrap of 70 % of the
//!   training rows and a random 70 % of the design columns (a fixed-seed SplitMix64 draws
//!   both), the bads weighted so that the two classes weigh the same and the trees split
//!   on what separates the rare class. The bads' weight carries an irrational offset
//!   (√2 / 1000): linfa breaks a tie between the classes' weights in a leaf in hash-map
//!   order (and prunes on it), so exact ties must not happen for the forest to be the
//!   same on every run.
//! - **Values**: every node (not only the leaves) holds the bad rate of the *unweighted*
//!   training rows that reach it, smoothed towards the overall rate
//!   (`(bads + prior) / (rows + 1)`), so the PDs keep the real bad rate.
//! - **PD**: the mean over the trees of the value of the leaf a row falls into.
//! - **Reasons — path contributions** (Saabas' method, as `treeinterpreter` computes it):
//!   along a row's path through a tree, each split moves the value from the parent's
//!   bad rate to the child's; the change is credited to the split's design column.
//!   Averaged over the trees, a row's PD is exactly the mean root rate (the portfolio's
//!   typical customer) plus the sum of its contributions, so "what raised this customer's
//!   PD the most" has one answer that adds up, in PD points. Unlike SHAP values they are
//!   not symmetric in the order of splits, but they are exact for the PD, cheap (one pass
//!   down each tree) and the same on every run.

use linfa::prelude::*;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How the forest grows.
#[derive(Debug, Clone, Copy)]
pub struct ForestSettings {
    pub trees: usize,
    pub depth: usize,
    pub seed: u64,
}

/// A fitted forest over standardized design columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// Design columns the forest reads (the model's `design_columns`).
    pub width: usize,
    pub trees: Vec<Tree>,
}

/// One tree: nodes in pre-order, the root first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A node: a leaf when `split` is `None`, else rows whose design column `column` is below
/// `threshold` go to node `left`, the others to node `right`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Smoothed bad rate of the training rows that reach the node.
    pub value: f64,
    /// Training rows that reach it.
    pub rows: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub column: usize,
    pub threshold: f64,
    pub left: usize,
    pub right: usize,
}

impl Forest {
    /// Grows the forest on standardized rows `z` with labels `bad`.
    pub fn fit(z: ArrayView2<f64>, bad: &[bool], settings: ForestSettings) -> Result<Forest> {
        let (n, p) = z.dim();
        if n == 0 || p == 0 || bad.len() != n {
            return Err(ModelError::Training(format!(
                "random forest: {n} rows, {p} columns, {} labels",
                bad.len()
            )));
        }
        let n_bad = bad.iter().filter(|&&b| b).count();
        let bad_weight =
            (n - n_bad) as f32 / n_bad.max(1) as f32 + std::f32::consts::SQRT_2 / 1000.0;
        let prior = n_bad as f64 / n as f64;
        let sample_rows = ((n as f64) * 0.7).ceil() as usize;
        let sample_columns = (((p as f64) * 0.7).ceil() as usize).clamp(1, p);
        // Every tree's rows and columns drawn first, in order, so that the trees can grow
        // on both cores and still be the same forest on every run.
        let mut rng = SplitMix64(settings.seed);
        let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..settings.trees)
            .map(|_| {
                let rows: Vec<usize> = (0..sample_rows).map(|_| rng.below(n)).collect();
                let mut columns: Vec<usize> = (0..p).collect();
                for i in 0..sample_columns {
                    let j = i + rng.below(p - i);
                    columns.swap(i, j);
                }
                columns.truncate(sample_columns);
                columns.sort_unstable();
                (rows, columns)
            })
            .collect();
        let grow = |(rows, columns): &(Vec<usize>, Vec<usize>)| -> Result<Tree> {
            let records = z.select(Axis(0), rows).select(Axis(1), columns);
            let targets: Array1<usize> = rows.iter().map(|&r| bad[r] as usize).collect();
            let weights: Array1<f32> = rows
                .iter()
                .map(|&r| if bad[r] { bad_weight } else { 1.0 })
                .collect();
            let fitted = DecisionTree::params()
                .max_depth(Some(settings.depth))
                .min_weight_leaf(20.0)
                .fit(&Dataset::new(records, targets).with_weights(weights))
                .map_err(|e| ModelError::Training(format!("random forest: {e}")))?;
            let mut tree = Tree { nodes: Vec::new() };
            tree.copy(fitted.root_node(), columns);
            tree.count(z, bad, prior);
            Ok(tree)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .clamp(1, draws.len().max(1));
        let chunk = draws.len().div_ceil(threads).max(1);
        let trees: Vec<Tree> = std::thread::scope(|scope| {
            let handles: Vec<_> = draws
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(grow).collect::<Result<Vec<_>>>()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a tree-growing thread panicked"))
                .collect::<Result<Vec<Vec<Tree>>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
        Ok(Forest { width: p, trees })
    }

    /// The PD of each row of standardized `z`.
    pub fn probabilities(&self, z: ArrayView2<f64>) -> Vec<f64> {
        let k = self.trees.len() as f64;
        z.rows()
            .into_iter()
            .map(|row| self.trees.iter().map(|t| t.leaf(&row).value).sum::<f64>() / k)
            .collect()
    }

    /// The mean root rate: the PD of the portfolio's typical customer, from which the
    /// contributions are counted.
    pub fn bias(&self) -> f64 {
        self.trees.iter().map(|t| t.nodes[0].value).sum::<f64>() / self.trees.len() as f64
    }

    /// Path contributions of each design column to each row's PD (rows × design
    /// columns); with [`Forest::bias`] they add up to the row's PD.
    pub fn contributions(&self, z: ArrayView2<f64>) -> Array2<f64> {
        let k = self.trees.len() as f64;
        let mut out = Array2::zeros((z.nrows(), self.width));
        for (row, mut into) in z.rows().into_iter().zip(out.rows_mut()) {
            for tree in &self.trees {
                let mut node = &tree.nodes[0];
                while let Some(s) = &node.split {
                    let child = &tree.nodes[if row[s.column] < s.threshold {
                        s.left
                    } else {
                        s.right
                    }];
                    into[s.column] += (child.value - node.value) / k;
                    node = child;
                }
            }
        }
        out
    }

    /// Internal consistency, for an artifact read from a file: children after their
    /// parent and in range, columns in range, rates that are probabilities.
    pub fn check(&self, width: usize) -> std::result::Result<(), String> {
        if self.width != width || self.trees.is_empty() {
            return Err(format!(
                "the forest reads {} design columns in {} trees, the model has {width} columns",
                self.width,
                self.trees.len()
            ));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            let n = tree.nodes.len();
            if n == 0 {
                return Err(format!("forest tree {t} has no nodes"));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                if !(node.value.is_finite() && (0.0..=1.0).contains(&node.value)) {
                    return Err(format!("forest tree {t} node {i}: rate {}", node.value));
                }
                if let Some(s) = &node.split
                    && !(s.column < width
                        && s.threshold.is_finite()
                        && s.left > i
                        && s.right > i
                        && s.left < n
                        && s.right < n)
                {
                    return Err(format!("forest tree {t} node {i}: a broken split"));
                }
            }
        }
        Ok(())
    }
}

impl Tree {
    /// Appends `node` and its subtree in pre-order; linfa's feature indices are into the
    /// tree's own `columns`. Returns the node's index. A split whose child is missing
    /// (linfa prunes a split whose children predict the same class) becomes a leaf.
    fn copy(&mut self, node: &TreeNode<f64, usize>, columns: &[usize]) -> usize {
        let index = self.nodes.len();
        self.nodes.push(Node {
            value: 0.0,
            rows: 0,
            split: None,
        });
        if !node.is_leaf() {
            let (feature, threshold, _) = node.split();
            let children = node.children();
            if let (Some(l), Some(r)) = (children[0].as_deref(), children[1].as_deref()) {
                let left = self.copy(l, columns);
                let right = self.copy(r, columns);
                self.nodes[index].split = Some(Split {
                    column: columns[feature],
                    threshold,
                    left,
                    right,
                });
            }
        }
        index
    }

    /// Every node's smoothed bad rate over the training rows (`prior`: the overall rate).
    fn count(&mut self, z: ArrayView2<f64>, bad: &[bool], prior: f64) {
        let mut bads = vec![0usize; self.nodes.len()];
        let mut rows = vec![0usize; self.nodes.len()];
        for (row, &b) in z.rows().into_iter().zip(bad) {
            let mut i = 0;
            loop {
                rows[i] += 1;
                bads[i] += b as usize;
                match &self.nodes[i].split {
                    Some(s) => {
                        i = if row[s.column] < s.threshold {
                            s.left
                        } else {
                            s.right
                        }
                    }
                    None => break,
                }
            }
        }
        for ((node, b), r) in self.nodes.iter_mut().zip(bads).zip(rows) {
            node.rows = r;
            node.value = (b as f64 + prior) / (r as f64 + 1.0);
        }
    }

    /// The leaf a row falls into (linfa's rule: left when the value is below the split).
    fn leaf(&self, row: &ArrayView1<f64>) -> &Node {
        let mut node = &self.nodes[0];
        while let Some(s) = &node.split {
            node = &self.nodes[if row[s.column] < s.threshold {
                s.left
            } else {
                s.right
            }];
        }
        node
    }
}

/// A small fixed-seed generator for the forest's bootstrap (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two informative columns (the bad rate rises with x0 and falls with x1) and a noise
    /// column, deterministic.
    fn data(n: usize) -> (Array2<f64>, Vec<bool>) {
        let mut rng = SplitMix64(7);
        let mut z = Array2::zeros((n, 3));
        let mut bad = Vec::with_capacity(n);
        for i in 0..n {
            let u = |r: &mut SplitMix64| r.below(1_000_000) as f64 / 1e6;
            let (a, b, c) = (
                u(&mut rng) * 4.0 - 2.0,
                u(&mut rng) * 4.0 - 2.0,
                u(&mut rng),
            );
            z[[i, 0]] = a;
            z[[i, 1]] = b;
            z[[i, 2]] = c;
            let p = 1.0 / (1.0 + (-(2.0 * a - 1.5 * b - 1.0)).exp());
            bad.push(u(&mut rng) < p);
        }
        (z, bad)
    }

    fn settings() -> ForestSettings {
        ForestSettings {
            trees: 20,
            depth: 4,
            seed: 42,
        }
    }

    #[test]
    fn contributions_add_up_to_the_pd_and_name_the_informative_columns() {
        let (z, bad) = data(3000);
        let forest = Forest::fit(z.view(), &bad, settings()).unwrap();
        forest.check(3).unwrap();
        let pd = forest.probabilities(z.view());
        let contributions = forest.contributions(z.view());
        for (p, c) in pd.iter().zip(contributions.rows()) {
            assert!(
                (forest.bias() + c.sum() - p).abs() < 1e-12,
                "{p} vs {}",
                c.sum()
            );
        }
        // A row with a high x0 and a low x1: both raise its PD, the noise column hardly.
        let risky = ndarray::array![[1.8, -1.8, 0.5]];
        let c = forest.contributions(risky.view());
        assert!(c[[0, 0]] > 0.05 && c[[0, 1]] > 0.05, "{c:?}");
        assert!(c[[0, 2]].abs() < c[[0, 0]].min(c[[0, 1]]), "{c:?}");
        // It ranks: the AUC on fresh rows is well above chance.
        let (z2, bad2) = data(2000);
        let fresh = forest.probabilities(z2.view());
        assert!(crate::metrics::auc(&fresh, &bad2).unwrap() > 0.75);
    }

    #[test]
    fn the_same_seed_grows_the_same_forest_and_it_survives_json() {
        let (z, bad) = data(1500);
        let a = Forest::fit(z.view(), &bad, settings()).unwrap();
        let b = Forest::fit(z.view(), &bad, settings()).unwrap();
        assert_eq!(a, b);
        let back: Forest = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.probabilities(z.view()), a.probabilities(z.view()));
    }

    #[test]
    fn a_broken_tree_is_refused() {
        let (z, bad) = data(500);
        let mut forest = Forest::fit(z.view(), &bad, settings()).unwrap();
        assert!(forest.check(4).is_err());
        let split = forest.trees[0].nodes[0].split.as_mut().expect("a split");
        split.left = 0;
        assert!(forest.check(3).unwrap_err().contains("broken split"));
    }
}
