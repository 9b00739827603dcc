fn main() {
    println!("resviz: under construction");
}
