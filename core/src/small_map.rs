//! A map for tables of a handful of entries (downloads open or running in a
//! page, calls awaiting the worker, databases open): a vector searched in
//! order. It stands in for `HashMap`, whose hashbrown and SipHash code cost
//! the wasm about 7 KB gzipped; no table here grows with a file's size.

use std::borrow::Borrow;

pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn position<Q: PartialEq + ?Sized>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        self.0.iter().position(|(k, _)| k.borrow() == key)
    }

    pub fn get<Q: PartialEq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.position(key).map(|i| &self.0[i].1)
    }

    pub fn get_mut<Q: PartialEq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.position(key).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key<Q: PartialEq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.position(key).is_some()
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    pub fn remove<Q: PartialEq + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.position(key).map(|i| self.0.swap_remove(i).1)
    }

    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                self.0.push((key, V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn take_values(&mut self) -> Vec<V> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut map = SmallMap::new();
        assert_eq!(map.insert("a".to_string(), 1), None);
        assert_eq!(map.insert("b".to_string(), 2), None);
        assert_eq!(map.insert("a".to_string(), 3), Some(1));
        assert_eq!(map.get("a"), Some(&3));
        assert!(map.contains_key("b") && !map.contains_key("c"));
        *map.get_or_default("c".to_string()) += 5;
        *map.get_or_default("c".to_string()) += 1;
        assert_eq!(map.get("c"), Some(&6));
        if let Some(b) = map.get_mut("b") {
            *b = 4;
        }
        assert_eq!(map.remove("a"), Some(3));
        assert_eq!(map.remove("a"), None);
        let mut values: Vec<i32> = map.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values, [4, 6]);
        assert_eq!(map.take_values().len(), 2);
        assert!(map.values().next().is_none());
    }
}
