//! The Merkle tree over a bundle's signatures, built the way RFC 9162 §2.1
//! (Certificate Transparency 2.0) builds its log's: any language with SHA-256
//! can rebuild the root and check an inclusion proof.
//!
//! - a leaf's hash is SHA-256(0x00 ‖ leaf), an inner node's SHA-256(0x01 ‖ left ‖ right);
//! - a tree of n > 1 leaves is split at k, the largest power of two below n:
//!   the first k leaves make the left subtree, the rest the right one;
//! - the empty tree's hash is SHA-256 of nothing.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of leaves given one by one, in memory proportional to the log of
/// their number: complete subtrees are merged as soon as they pair up.
#[derive(Debug, Default)]
pub struct RootBuilder {
    /// Complete subtrees, largest (leftmost) first: (leaf count, hash).
    stack: Vec<(u64, Hash)>,
    leaves: u64,
}

impl RootBuilder {
    pub fn push(&mut self, leaf: &[u8]) {
        self.push_hash(leaf_hash(leaf));
    }

    pub fn push_hash(&mut self, hash: Hash) {
        self.leaves += 1;
        let mut subtree = (1u64, hash);
        while let Some(&(size, left)) = self.stack.last() {
            if size != subtree.0 {
                break;
            }
            self.stack.pop();
            subtree = (size * 2, node_hash(&left, &subtree.1));
        }
        self.stack.push(subtree);
    }

    pub fn leaves(&self) -> u64 {
        self.leaves
    }

    /// The subtrees left, joined from the right as the split rule does.
    pub fn root(&self) -> Hash {
        let mut rest = self.stack.iter().rev();
        match rest.next() {
            None => Sha256::digest([]).into(),
            Some(&(_, last)) => rest.fold(last, |right, (_, left)| node_hash(left, &right)),
        }
    }
}

/// The root of `leaves`, given by their hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The largest power of two below `n` (n > 1).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The audit path of leaf `index` (RFC 9162 §2.1.3.1): the sibling hashes from
/// the leaf up to the root.
pub fn inclusion_path(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return Vec::new();
    }
    let k = split(n);
    if index < k {
        let mut path = inclusion_path(&leaves[..k], index);
        path.push(root_of(&leaves[k..]));
        path
    } else {
        let mut path = inclusion_path(&leaves[k..], index - k);
        path.push(root_of(&leaves[..k]));
        path
    }
}

/// The root that `path` leads to from leaf `index` of a tree of `size`
/// leaves (RFC 9162 §2.1.3.2); `None` when the path cannot belong to it.
pub fn root_from_path(index: u64, size: u64, leaf: Hash, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn the_streamed_root_is_the_recursive_one() {
        for n in 0..70 {
            let all = leaves(n);
            let mut builder = RootBuilder::default();
            for h in &all {
                builder.push_hash(*h);
            }
            assert_eq!(builder.root(), root_of(&all), "{n} leaves");
        }
    }

    #[test]
    fn every_inclusion_proof_leads_to_the_root_and_no_other() {
        for n in 1..40 {
            let all = leaves(n);
            let root = root_of(&all);
            for i in 0..n {
                let path = inclusion_path(&all, i);
                assert_eq!(
                    root_from_path(i as u64, n as u64, all[i], &path),
                    Some(root),
                    "leaf {i} of {n}"
                );
                let other = leaf_hash(b"someone else");
                assert_ne!(root_from_path(i as u64, n as u64, other, &path), Some(root));
                if n > 1 {
                    assert_ne!(
                        root_from_path(((i + 1) % n) as u64, n as u64, all[i], &path),
                        Some(root)
                    );
                }
            }
        }
    }

    #[test]
    fn known_answer() {
        // RFC 6962's empty-tree hash, and a two-leaf tree by hand.
        assert_eq!(
            hex::encode(RootBuilder::default().root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut by_hand = Sha256::new();
        by_hand.update([1u8]);
        by_hand.update(a);
        by_hand.update(b);
        assert_eq!(root_of(&[a, b]), <Hash>::from(by_hand.finalize()));
    }
}
