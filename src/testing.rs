//! Helpers shared by this crate's unit tests.

/// Texts made of pieces drawn at random, the same sequence on every run (xorshift), for the tests
/// that compare a fast text routine with a plain one.
pub(crate) struct RandomTexts<'a> {
    state: u64,
    pieces: &'a [&'a str],
}

impl<'a> RandomTexts<'a> {
    pub(crate) fn new(seed: u64, pieces: &'a [&'a str]) -> Self {
        RandomTexts {
            state: seed,
            pieces,
        }
    }

    /// The next text: fewer than `max_pieces` pieces.
    pub(crate) fn next(&mut self, max_pieces: u64) -> String {
        let mut text = String::new();
        for _ in 0..(self.state % max_pieces) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            text.push_str(self.pieces[(self.state % self.pieces.len() as u64) as usize]);
        }
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        text
    }
}
