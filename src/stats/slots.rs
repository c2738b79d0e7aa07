//! Which row of the index holds which demand.
//!
//! A demand is named by its [`DemandKey`]; an update replaces its row. A map from key to row
//! costs 24 bytes a slot plus its empty slots (52 MiB at a million demands). Here the keys sit
//! in a vector beside the rows, in the same order, and the hash table holds only 4-byte row
//! numbers (about 27 MiB together). The key is already a SHA-256 digest, so its first word is
//! the hash.

use super::DemandKey;
use hashbrown::HashTable;

#[derive(Debug, Clone, Default)]
pub struct Slots {
    /// `keys[i]` names the demand in row `i`.
    keys: Vec<DemandKey>,
    /// Row numbers, found by their key's first word.
    table: HashTable<u32>,
}

impl Slots {
    /// Rebuilds the table from keys in row order.
    pub fn from_keys(keys: Vec<DemandKey>) -> Slots {
        let mut s = Slots {
            table: HashTable::with_capacity(keys.len()),
            keys: Vec::with_capacity(keys.len()),
        };
        for k in keys {
            s.push(k);
        }
        s
    }

    /// The row of a demand, if it has one.
    pub fn get(&self, key: &DemandKey) -> Option<usize> {
        self.table
            .find(key[0], |&row| self.keys[row as usize] == *key)
            .map(|&row| row as usize)
    }

    /// Gives a new demand the next row, and returns it. Rows are u32: an index of four
    /// billion demands would need another layout long before this one ran out.
    pub fn push(&mut self, key: DemandKey) -> usize {
        let row = self.keys.len();
        self.keys.push(key);
        let keys = &self.keys;
        self.table
            .insert_unique(key[0], row as u32, |&r| keys[r as usize][0]);
        row
    }

    /// The keys, in row order.
    pub fn keys(&self) -> &[DemandKey] {
        &self.keys
    }

    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        let keys = &self.keys;
        self.table.shrink_to_fit(|&r| keys[r as usize][0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_their_rows_even_when_first_words_collide() {
        let mut s = Slots::default();
        let keys: Vec<DemandKey> = (0..10_000u64).map(|i| [i % 7, i]).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(s.push(*k), i);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(s.get(k), Some(i));
        }
        assert_eq!(s.get(&[3, 99_999]), None);
        let again = Slots::from_keys(s.keys().to_vec());
        assert_eq!(again.get(&keys[4321]), Some(4321));
    }
}
