# bench/plots.gp: the plots of make bench (gnuplot -e "dir='build/bench/results'" bench/plots.gp), from the data
# files bench/report.py writes: tok/s by weight type (prompt and decode, g4 beside llama.cpp, with the decode
# bound) and decode tok/s by context depth.
if (!exists("dir")) dir = 'build/bench/results'
set terminal pngcairo size 1100,450 font ",10" noenhanced
set output 'bench/tok_s_by_type.png'
set multiplot layout 1,2 title "g4 vs llama.cpp, E2B-shaped random-weight Gemma 4, same file and threads"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set ylabel "tokens/s"
set yrange [0:*]
set title "prompt processing"
plot dir.'/type.dat' using 2:xtic(1) title "g4", '' using 3 title "llama.cpp"
set title "decode"
plot dir.'/type.dat' using 4:xtic(1) title "g4", '' using 5 title "llama.cpp", '' using 6 title "bandwidth bound"
unset multiplot

set output 'bench/tok_s_by_depth.png'
set terminal pngcairo size 700,450 font ",10" noenhanced
set style data linespoints
set title "decode tok/s by context depth (tokens already in the cache)"
set xlabel "depth (tokens)"
set ylabel "decode tokens/s"
set key top right
set yrange [0:*]
plot dir.'/depth.dat' using 1:2 title "g4" lw 2 pt 7, '' using 1:3 title "llama.cpp" lw 2 pt 5
